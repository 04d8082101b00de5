//! Streaming pod subresources: `exec`, `attach` and `portforward`.
//!
//! The checks kube-apiserver makes before it proxies to the kubelet (`streamLocation`: the
//! container choice, a host assigned) come first, with upstream's messages. Then:
//!
//! - **`vkube sim`** answers like a kubelet whose containers are echoes:
//!   - `exec`/`attach` over WebSocket (`v5.channel.k8s.io`, `v4.channel.k8s.io`: one channel
//!     byte per message, 0 stdin, 1 stdout, 2 stderr, 3 status, 4 resize, 255 close in v5) and
//!     over SPDY/3.1 (`X-Stream-Protocol-Version: v4.channel.k8s.io`: one SPDY stream per
//!     channel, the status written on the `error` stream), which kubectl falls back to;
//!   - `portforward` over SPDY/3.1 (`portforward.k8s.io`: an `error` and a `data` stream per
//!     forwarded connection), either directly or tunnelled through a WebSocket
//!     (`SPDY/3.1+portforward.k8s.io`, what kubectl ≥ 1.31 tries first); every port echoes.
//!
//!   The simulated command: `echo ARGS…` prints ARGS; `true`, `false` and `exit N` end with that
//!   code (a failure is a `NonZeroExitCode` status carrying the code, as the kubelet sends it);
//!   anything else (`cat`, `sh`, …) and `attach` echo stdin until it closes. `sh -c "SCRIPT"`
//!   runs SCRIPT's first command the same way.
//! - **A virtual cluster** relays the upgrade byte for byte to the pod's physical cluster
//!   (through the syncer's credentials, the path rewritten to the physical pod), so WebSocket
//!   and SPDY work alike.
//!
//! SPDY header blocks are zlib streams with a preset dictionary; this module inflates them
//! with a small deflate decoder and writes its own as stored (uncompressed) deflate blocks,
//! which every zlib reader accepts.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use bytes::Bytes;
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::sync::mpsc;
use tokio::time::{Instant, timeout};
use tokio_util::sync::CancellationToken;

use super::error::{ApiError, Target};
use super::objects::Ctx;

/// A streaming connection with no traffic for this long is closed (the kubelet's default
/// `streamingConnectionIdleTimeout`).
const IDLE_TIMEOUT: Duration = Duration::from_secs(4 * 60 * 60);
/// One write to a peer.
const WRITE_TIMEOUT: Duration = Duration::from_secs(60);
/// Opening a connection to a physical API server (TCP + TLS).
const DIAL_TIMEOUT: Duration = Duration::from_secs(10);
/// The physical API server's response head (and an error body).
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(30);
/// hyper handing over the upgraded connection after the 101.
const UPGRADE_TIMEOUT: Duration = Duration::from_secs(30);
/// The client creating its SPDY streams (the kubelet's `streamCreationTimeout`).
const STREAM_CREATION_TIMEOUT: Duration = Duration::from_secs(30);
/// The client closing its side after the final status.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(10);
/// The largest WebSocket frame or SPDY frame accepted.
const MAX_FRAME: usize = 1 << 20;
/// The largest inflated SPDY header block.
const MAX_HEADER_BLOCK: usize = 64 << 10;
/// The largest HTTP response head read from a physical API server.
const MAX_HEAD: usize = 64 << 10;
/// The largest error body relayed from a physical API server.
const MAX_ERROR_BODY: usize = 1 << 20;
/// Open SPDY streams (and half-formed port-forward pairs) per connection.
const MAX_STREAMS: usize = 1024;
/// Outgoing data is cut into chunks of at most this size.
const CHUNK: usize = 32 << 10;

/// `exec`, `attach` or `portforward` of pod `name`.
pub async fn pod_stream(
    ctx: &Ctx<'_>,
    name: &str,
    subresource: &str,
    req: Request,
) -> Result<Response, ApiError> {
    ctx.read_barrier().await?;
    let pod = ctx
        .app
        .store
        .get("pods", &ctx.namespace, name)
        .ok_or_else(|| {
            ApiError::NotFound(Target {
                group: String::new(),
                resource: "pods".into(),
                name: name.to_string(),
            })
        })?
        .value();
    let params = Params::parse(req.uri().query());
    // kube-apiserver's streamLocation: the container (exec, attach), then the host.
    let container = if subresource == "portforward" {
        String::new()
    } else {
        choose_container(&pod, name, params.container.as_deref())?
    };
    let node = pod
        .pointer("/spec/nodeName")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    if node.is_empty() {
        return Err(ApiError::BadRequest(format!(
            "pod {name} does not have a host assigned"
        )));
    }
    let upgrade = UpgradeKind::of(req.headers());
    if upgrade == UpgradeKind::None {
        return Err(ApiError::BadRequest("Upgrade request required".into()));
    }
    if ctx.app.simulated {
        return Ok(simulated(
            &pod,
            &ctx.namespace,
            subresource,
            &container,
            params,
            upgrade,
            req,
        ));
    }
    if let Some(physical) = ctx.app.syncers.for_node(&node) {
        let id = ctx.app.syncers.vcluster_id();
        let pname = crate::syncer::translate::physical_name(name, &ctx.namespace, &id);
        return relay(&physical, &pname, subresource, req).await;
    }
    Err(ApiError::BadRequest(format!(
        "pod {name} has no physical cluster serving its {subresource} (no syncer runs for node {node:?})"
    )))
}

// ---------------------------------------------------------------------------------------
// Request parameters and checks

/// `PodExecOptions` / `PodAttachOptions` from the query (`command` repeats).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
struct Params {
    command: Vec<String>,
    container: Option<String>,
    stdin: bool,
    stdout: bool,
    stderr: bool,
    tty: bool,
}

impl Params {
    fn parse(query: Option<&str>) -> Params {
        let pairs: Vec<(String, String)> = query
            .and_then(|q| serde_urlencoded::from_str(q).ok())
            .unwrap_or_default();
        let first = |key: &str| pairs.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone());
        let flag = |key: &str| matches!(first(key).as_deref(), Some("true" | "1"));
        Params {
            command: pairs
                .iter()
                .filter(|(k, _)| k == "command")
                .map(|(_, v)| v.clone())
                .collect(),
            container: first("container"),
            stdin: flag("stdin"),
            stdout: flag("stdout"),
            stderr: flag("stderr"),
            tty: flag("tty"),
        }
    }
}

fn names_at<'a>(pod: &'a Value, pointer: &str) -> Vec<&'a str> {
    pod.pointer(pointer)
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|c| c.get("name").and_then(Value::as_str))
        .collect()
}

/// kube-apiserver's container choice for exec and attach.
fn choose_container(pod: &Value, name: &str, requested: Option<&str>) -> Result<String, ApiError> {
    let containers = names_at(pod, "/spec/containers");
    let init = names_at(pod, "/spec/initContainers");
    let ephemeral = names_at(pod, "/spec/ephemeralContainers");
    match requested.filter(|c| !c.is_empty()) {
        Some(c) => {
            if containers.contains(&c) || init.contains(&c) || ephemeral.contains(&c) {
                Ok(c.to_string())
            } else {
                Err(ApiError::BadRequest(format!(
                    "container {c} is not valid for pod {name}"
                )))
            }
        }
        None => match containers.as_slice() {
            [only] => Ok((*only).to_string()),
            [] => Err(ApiError::BadRequest(format!(
                "a container name must be specified for pod {name}"
            ))),
            many => {
                let mut msg = format!(
                    "a container name must be specified for pod {name}, choose one of: [{}]",
                    many.join(" ")
                );
                if !init.is_empty() {
                    msg.push_str(&format!(
                        " or one of the init containers: [{}]",
                        init.join(" ")
                    ));
                }
                Err(ApiError::BadRequest(msg))
            }
        },
    }
}

/// Whether the simulated runtime has container `c` running (the kubelet looks it up among
/// the running containers only).
fn container_running(pod: &Value, c: &str) -> bool {
    [
        "/status/containerStatuses",
        "/status/initContainerStatuses",
        "/status/ephemeralContainerStatuses",
    ]
    .iter()
    .filter_map(|p| pod.pointer(p).and_then(Value::as_array))
    .flatten()
    .any(|s| {
        s.get("name").and_then(Value::as_str) == Some(c) && s.pointer("/state/running").is_some()
    })
}

/// An error the way the kubelet writes one (plain text; kube-apiserver relays it as is and
/// kubectl prints `unable to upgrade connection: <text>`).
fn kubelet_error(code: StatusCode, text: String) -> Response {
    let mut resp = (code, text).into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    resp
}

/// The kind of upgrade a request asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum UpgradeKind {
    None,
    WebSocket,
    Spdy,
    Other,
}

impl UpgradeKind {
    fn of(headers: &HeaderMap) -> UpgradeKind {
        let connection_upgrade = header_tokens(headers, &header::CONNECTION)
            .iter()
            .any(|t| t.eq_ignore_ascii_case("upgrade"));
        let upgrade = header_tokens(headers, &header::UPGRADE);
        if !connection_upgrade || upgrade.is_empty() {
            return UpgradeKind::None;
        }
        if upgrade.iter().any(|u| u.eq_ignore_ascii_case("websocket")) {
            UpgradeKind::WebSocket
        } else if upgrade
            .iter()
            .any(|u| u.to_ascii_lowercase().starts_with("spdy/3.1"))
        {
            UpgradeKind::Spdy
        } else {
            UpgradeKind::Other
        }
    }
}

/// The comma-separated tokens of every instance of header `name`.
fn header_tokens(headers: &HeaderMap, name: &HeaderName) -> Vec<String> {
    headers
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|t| t.trim().to_string())
        .filter(|t| !t.is_empty())
        .collect()
}

/// Answers `req` with `response` (a 101) and runs `session` on the upgraded connection.
fn upgrade_then<F, Fut>(mut req: Request, response: Response, session: F) -> Response
where
    F: FnOnce(TokioIo<hyper::upgrade::Upgraded>) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let on_upgrade = hyper::upgrade::on(&mut req);
    tokio::spawn(async move {
        match timeout(UPGRADE_TIMEOUT, on_upgrade).await {
            Ok(Ok(upgraded)) => session(TokioIo::new(upgraded)).await,
            Ok(Err(e)) => tracing::debug!(error = %e, "streaming upgrade failed"),
            Err(_) => tracing::debug!("streaming upgrade timed out"),
        }
    });
    response
}

fn switching_protocols(headers: &[(&'static str, String)]) -> Response {
    let mut resp = Response::new(Body::empty());
    *resp.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    for (name, value) in headers {
        if let Ok(v) = HeaderValue::from_str(value) {
            resp.headers_mut().append(*name, v);
        }
    }
    resp
}

// ---------------------------------------------------------------------------------------
// The simulated kubelet

/// What the simulated container does for a command.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Behaviour {
    /// Print this on stdout, exit 0.
    Print(String),
    /// Exit with this code.
    Exit(i32),
    /// Echo stdin on stdout until stdin closes, exit 0.
    Echo,
    /// `attach`: echo stdin; without stdin, stay attached until the client leaves.
    Attach,
}

impl Behaviour {
    fn of(command: &[String]) -> Behaviour {
        let words: Vec<&str> = command.iter().map(String::as_str).collect();
        let words: Vec<&str> = match words.as_slice() {
            [shell, "-c", script, ..] if is_shell(shell) => script.split_whitespace().collect(),
            _ => words,
        };
        let Some((program, args)) = words.split_first() else {
            return Behaviour::Echo;
        };
        match program.rsplit('/').next().unwrap_or(program) {
            "echo" => match args.split_first() {
                Some((&"-n", rest)) => Behaviour::Print(rest.join(" ")),
                _ => Behaviour::Print(format!("{}\n", args.join(" "))),
            },
            "true" => Behaviour::Exit(0),
            "false" => Behaviour::Exit(1),
            "exit" => Behaviour::Exit(match args.first() {
                None => 0,
                // sh: the low 8 bits; not a number is "Illegal number", status 2.
                Some(n) => n.parse::<u32>().map_or(2, |n| (n & 0xff) as i32),
            }),
            _ => Behaviour::Echo,
        }
    }
}

fn is_shell(program: &str) -> bool {
    matches!(
        program.rsplit('/').next().unwrap_or(program),
        "sh" | "bash" | "ash" | "dash" | "zsh"
    )
}

/// Where one output stream of the simulated process goes.
#[derive(Clone)]
enum Sink {
    Discard,
    Ws(WsWriter, u8),
    Spdy(SpdyOut, u32),
}

impl Sink {
    async fn write(&self, data: &[u8]) -> std::io::Result<()> {
        match self {
            Sink::Discard => Ok(()),
            Sink::Ws(w, channel) => {
                for chunk in data.chunks(CHUNK) {
                    w.channel(*channel, chunk).await?;
                }
                Ok(())
            }
            Sink::Spdy(out, id) => out.data(*id, data).await,
        }
    }
}

/// Runs the simulated process; returns its exit code.
async fn run_simulated(
    behaviour: &Behaviour,
    tty: bool,
    stdin: Option<mpsc::Receiver<Bytes>>,
    stdout: &Sink,
    closed: &CancellationToken,
) -> i32 {
    match behaviour {
        Behaviour::Print(text) => {
            drop(stdin);
            let text = if tty {
                text.replace('\n', "\r\n")
            } else {
                text.clone()
            };
            let _ = stdout.write(text.as_bytes()).await;
            0
        }
        Behaviour::Exit(code) => *code,
        Behaviour::Echo | Behaviour::Attach => {
            let Some(mut stdin) = stdin else {
                if *behaviour == Behaviour::Attach {
                    let _ = timeout(IDLE_TIMEOUT, closed.cancelled()).await;
                }
                return 0;
            };
            loop {
                let chunk = tokio::select! {
                    c = stdin.recv() => c,
                    _ = closed.cancelled() => None,
                };
                let Some(chunk) = chunk else { return 0 };
                if !tty {
                    if stdout.write(&chunk).await.is_err() {
                        return 0;
                    }
                    continue;
                }
                // A terminal: ^C interrupts, ^D ends the input, Enter echoes a line break.
                let mut echoed = Vec::with_capacity(chunk.len() + 8);
                let mut end = None;
                for &b in chunk.iter() {
                    match b {
                        0x03 => {
                            end = Some(130);
                            break;
                        }
                        0x04 => {
                            end = Some(0);
                            break;
                        }
                        b'\r' | b'\n' => echoed.extend_from_slice(b"\r\n"),
                        b => echoed.push(b),
                    }
                }
                if stdout.write(&echoed).await.is_err() {
                    return 0;
                }
                if let Some(code) = end {
                    return code;
                }
            }
        }
    }
}

/// The `metav1.Status` the kubelet writes on the error channel when a command ends.
fn exit_status(code: i32, command: &[String]) -> Value {
    if code == 0 {
        return json!({"metadata": {}, "status": "Success"});
    }
    json!({
        "metadata": {},
        "status": "Failure",
        "message": format!(
            "command terminated with non-zero exit code: error executing command [{}], exit code {code}",
            command.join(" ")
        ),
        "reason": "NonZeroExitCode",
        "details": {"causes": [{"reason": "ExitCode", "message": code.to_string()}]},
    })
}

const WS_EXEC_PROTOCOLS: [&str; 2] = ["v5.channel.k8s.io", "v4.channel.k8s.io"];
const SPDY_EXEC_PROTOCOLS: [&str; 2] = ["v4.channel.k8s.io", "v5.channel.k8s.io"];
const PORT_FORWARD_PROTOCOL: &str = "portforward.k8s.io";
const WS_PORT_FORWARD_PROTOCOL: &str = "SPDY/3.1+portforward.k8s.io";

/// The simulated kubelet's answer (after kube-apiserver's checks passed).
fn simulated(
    pod: &Value,
    namespace: &str,
    subresource: &str,
    container: &str,
    params: Params,
    upgrade: UpgradeKind,
    req: Request,
) -> Response {
    let name = pod
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("");
    let running = pod.pointer("/status/phase").and_then(Value::as_str) == Some("Running");
    if subresource == "portforward" {
        if !running {
            return kubelet_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("pod not found (\"{name}_{namespace}\")"),
            );
        }
        return simulated_port_forward(upgrade, req);
    }
    if !running || !container_running(pod, container) {
        return kubelet_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("container not found (\"{container}\")"),
        );
    }
    if !params.stdin && !params.stdout && !params.stderr {
        return kubelet_error(
            StatusCode::BAD_REQUEST,
            "you must specify at least 1 of stdin, stdout, stderr".into(),
        );
    }
    let behaviour = if subresource == "attach" {
        Behaviour::Attach
    } else {
        Behaviour::of(&params.command)
    };
    let plan = ExecPlan { params, behaviour };
    match upgrade {
        UpgradeKind::WebSocket => {
            let offered = header_tokens(
                req.headers(),
                &HeaderName::from_static("sec-websocket-protocol"),
            );
            let Some(protocol) = WS_EXEC_PROTOCOLS
                .iter()
                .find(|p| offered.iter().any(|o| o == *p))
            else {
                return kubelet_error(
                    StatusCode::BAD_REQUEST,
                    format!(
                        "requested protocol(s) are not supported: [{}]; supports [{}]",
                        offered.join(" "),
                        WS_EXEC_PROTOCOLS.join(" ")
                    ),
                );
            };
            let v5 = *protocol == WS_EXEC_PROTOCOLS[0];
            match websocket_accept_headers(req.headers(), protocol) {
                Ok(headers) => {
                    let resp = switching_protocols(&headers);
                    upgrade_then(req, resp, move |io| ws_exec(io, plan, v5))
                }
                Err(resp) => *resp,
            }
        }
        UpgradeKind::Spdy => {
            let offered = header_tokens(
                req.headers(),
                &HeaderName::from_static("x-stream-protocol-version"),
            );
            let Some(protocol) = offered
                .iter()
                .find(|o| SPDY_EXEC_PROTOCOLS.contains(&o.as_str()))
            else {
                return kubelet_error(
                    StatusCode::FORBIDDEN,
                    format!(
                        "unable to upgrade: unable to negotiate protocol: client supports [{}], server accepts [{}]",
                        offered.join(" "),
                        SPDY_EXEC_PROTOCOLS.join(" ")
                    ),
                );
            };
            let resp = switching_protocols(&[
                ("connection", "Upgrade".into()),
                ("upgrade", "SPDY/3.1".into()),
                ("x-stream-protocol-version", protocol.clone()),
            ]);
            upgrade_then(req, resp, move |io| spdy_exec(io, plan))
        }
        UpgradeKind::None | UpgradeKind::Other => {
            kubelet_error(StatusCode::BAD_REQUEST, "Upgrade request required".into())
        }
    }
}

/// The 101 headers of a WebSocket handshake, or the error response.
fn websocket_accept_headers(
    headers: &HeaderMap,
    protocol: &str,
) -> Result<Vec<(&'static str, String)>, Box<Response>> {
    let key = headers
        .get("sec-websocket-key")
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|k| !k.is_empty());
    let version_ok = headers
        .get("sec-websocket-version")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim() == "13");
    let Some(key) = key.filter(|_| version_ok) else {
        return Err(Box::new(kubelet_error(
            StatusCode::BAD_REQUEST,
            "websocket: the client is not using the websocket protocol: missing Sec-WebSocket-Key or Sec-WebSocket-Version 13".into(),
        )));
    };
    Ok(vec![
        ("upgrade", "websocket".into()),
        ("connection", "Upgrade".into()),
        ("sec-websocket-accept", websocket_accept(key)),
        ("sec-websocket-protocol", protocol.to_string()),
    ])
}

/// `Sec-WebSocket-Accept` for a `Sec-WebSocket-Key` (RFC 6455 §4.2.2).
fn websocket_accept(key: &str) -> String {
    const GUID: &str = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
    let digest = ring::digest::digest(
        &ring::digest::SHA1_FOR_LEGACY_USE_ONLY,
        format!("{key}{GUID}").as_bytes(),
    );
    base64::engine::general_purpose::STANDARD.encode(digest.as_ref())
}

fn simulated_port_forward(upgrade: UpgradeKind, req: Request) -> Response {
    match upgrade {
        UpgradeKind::WebSocket => {
            let offered = header_tokens(
                req.headers(),
                &HeaderName::from_static("sec-websocket-protocol"),
            );
            if !offered.iter().any(|o| o == WS_PORT_FORWARD_PROTOCOL) {
                return kubelet_error(
                    StatusCode::BAD_REQUEST,
                    format!(
                        "requested protocol(s) are not supported: [{}]; supports [{WS_PORT_FORWARD_PROTOCOL}]",
                        offered.join(" ")
                    ),
                );
            }
            match websocket_accept_headers(req.headers(), WS_PORT_FORWARD_PROTOCOL) {
                Ok(headers) => {
                    let resp = switching_protocols(&headers);
                    upgrade_then(req, resp, |io| async move {
                        spdy_port_forward(ws_tunnel(io)).await;
                    })
                }
                Err(resp) => *resp,
            }
        }
        UpgradeKind::Spdy => {
            let offered = header_tokens(
                req.headers(),
                &HeaderName::from_static("x-stream-protocol-version"),
            );
            if !offered.is_empty() && !offered.iter().any(|o| o == PORT_FORWARD_PROTOCOL) {
                return kubelet_error(
                    StatusCode::FORBIDDEN,
                    format!(
                        "unable to upgrade: unable to negotiate protocol: client supports [{}], server accepts [{PORT_FORWARD_PROTOCOL}]",
                        offered.join(" ")
                    ),
                );
            }
            let mut headers = vec![
                ("connection", "Upgrade".to_string()),
                ("upgrade", "SPDY/3.1".to_string()),
            ];
            if !offered.is_empty() {
                headers.push(("x-stream-protocol-version", PORT_FORWARD_PROTOCOL.into()));
            }
            let resp = switching_protocols(&headers);
            upgrade_then(req, resp, spdy_port_forward)
        }
        UpgradeKind::None | UpgradeKind::Other => {
            kubelet_error(StatusCode::BAD_REQUEST, "Upgrade request required".into())
        }
    }
}

/// An exec or attach to run.
struct ExecPlan {
    params: Params,
    behaviour: Behaviour,
}

// ---------------------------------------------------------------------------------------
// WebSocket (RFC 6455), server side

const OP_CONTINUATION: u8 = 0x0;
const OP_TEXT: u8 = 0x1;
const OP_BINARY: u8 = 0x2;
const OP_CLOSE: u8 = 0x8;
const OP_PING: u8 = 0x9;
const OP_PONG: u8 = 0xA;

/// One received frame (unmasked).
#[derive(Debug, PartialEq, Eq)]
struct WsFrame {
    fin: bool,
    opcode: u8,
    payload: Vec<u8>,
}

/// Fills `head` with a frame's fixed-size head; false at a clean end of stream before it.
async fn read_head<R: AsyncRead + Unpin>(r: &mut R, head: &mut [u8]) -> std::io::Result<bool> {
    if r.read(&mut head[..1]).await? == 0 {
        return Ok(false);
    }
    r.read_exact(&mut head[1..]).await?;
    Ok(true)
}

/// Reads one frame; `None` at a clean end of stream before a frame starts.
async fn read_ws_frame<R: AsyncRead + Unpin>(r: &mut R) -> std::io::Result<Option<WsFrame>> {
    let mut head = [0u8; 2];
    if !read_head(r, &mut head).await? {
        return Ok(None);
    }
    let fin = head[0] & 0x80 != 0;
    let opcode = head[0] & 0x0f;
    let masked = head[1] & 0x80 != 0;
    let len = match head[1] & 0x7f {
        126 => {
            let mut b = [0u8; 2];
            r.read_exact(&mut b).await?;
            u64::from(u16::from_be_bytes(b))
        }
        127 => {
            let mut b = [0u8; 8];
            r.read_exact(&mut b).await?;
            u64::from_be_bytes(b)
        }
        n => u64::from(n),
    };
    if len > MAX_FRAME as u64 || (opcode >= OP_CLOSE && (len > 125 || !fin)) {
        return Err(invalid("websocket frame too large or malformed"));
    }
    let mut mask = [0u8; 4];
    if masked {
        r.read_exact(&mut mask).await?;
    }
    let mut payload = vec![0u8; len as usize];
    r.read_exact(&mut payload).await?;
    if masked {
        for (i, b) in payload.iter_mut().enumerate() {
            *b ^= mask[i % 4];
        }
    }
    Ok(Some(WsFrame {
        fin,
        opcode,
        payload,
    }))
}

/// A final, unmasked server frame.
fn encode_ws_frame(opcode: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(payload.len() + 10);
    out.push(0x80 | opcode);
    match payload.len() {
        n if n < 126 => out.push(n as u8),
        n if n <= usize::from(u16::MAX) => {
            out.push(126);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            out.push(127);
            out.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    out.extend_from_slice(payload);
    out
}

fn invalid(msg: &'static str) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, msg)
}

fn broken_pipe() -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::BrokenPipe, "stream closed")
}

type BoxWrite = Box<dyn AsyncWrite + Send + Unpin>;

/// The sending side of a WebSocket, shared by the tasks that write to it.
#[derive(Clone)]
struct WsWriter(Arc<tokio::sync::Mutex<WsWriterInner>>);

struct WsWriterInner {
    io: BoxWrite,
    /// A close frame was sent: nothing may follow it.
    closed: bool,
}

impl WsWriter {
    fn new(io: BoxWrite) -> WsWriter {
        WsWriter(Arc::new(tokio::sync::Mutex::new(WsWriterInner {
            io,
            closed: false,
        })))
    }

    async fn frame(&self, opcode: u8, payload: &[u8]) -> std::io::Result<()> {
        let mut inner = self.0.lock().await;
        if inner.closed {
            return Err(broken_pipe());
        }
        if opcode == OP_CLOSE {
            inner.closed = true;
        }
        let bytes = encode_ws_frame(opcode, payload);
        let io = &mut inner.io;
        timeout(WRITE_TIMEOUT, async {
            io.write_all(&bytes).await?;
            io.flush().await
        })
        .await
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "websocket write"))?
    }

    /// A binary message on a remotecommand channel.
    async fn channel(&self, channel: u8, data: &[u8]) -> std::io::Result<()> {
        let mut payload = Vec::with_capacity(data.len() + 1);
        payload.push(channel);
        payload.extend_from_slice(data);
        self.frame(OP_BINARY, &payload).await
    }

    /// Sends a close frame (once).
    async fn close(&self, code: u16) {
        let _ = self.frame(OP_CLOSE, &code.to_be_bytes()).await;
    }

    async fn shutdown(&self) {
        let mut inner = self.0.lock().await;
        let _ = timeout(WRITE_TIMEOUT, inner.io.shutdown()).await;
    }
}

/// Reads a remotecommand WebSocket: stdin to `stdin` (until the v5 close signal for channel
/// 0 or the end of the connection), answers pings, notes the client's close frame. Cancels
/// `closed` when the connection ends.
async fn ws_exec_reader<R: AsyncRead + Unpin>(
    mut rd: R,
    writer: WsWriter,
    stdin: mpsc::Sender<Bytes>,
    v5: bool,
    closed: CancellationToken,
) {
    let mut stdin = Some(stdin);
    let mut channel: Option<u8> = None;
    loop {
        let frame = tokio::select! {
            f = timeout(IDLE_TIMEOUT, read_ws_frame(&mut rd)) => f,
            _ = closed.cancelled() => break,
        };
        let Ok(Ok(Some(frame))) = frame else { break };
        match frame.opcode {
            OP_CLOSE => {
                let code = frame
                    .payload
                    .get(..2)
                    .map_or(1000, |c| u16::from_be_bytes([c[0], c[1]]));
                writer.close(code).await;
                break;
            }
            OP_PING => {
                let _ = writer.frame(OP_PONG, &frame.payload).await;
            }
            OP_PONG => {}
            OP_TEXT | OP_BINARY | OP_CONTINUATION => {
                if frame.opcode != OP_CONTINUATION {
                    channel = None;
                }
                let mut data = frame.payload.as_slice();
                if channel.is_none() {
                    let Some((c, rest)) = data.split_first() else {
                        continue;
                    };
                    channel = Some(*c);
                    data = rest;
                }
                match channel {
                    Some(0) if !data.is_empty() => {
                        if let Some(tx) = &stdin {
                            let sent = tokio::select! {
                                r = tx.send(Bytes::copy_from_slice(data)) => r.is_ok(),
                                _ = closed.cancelled() => break,
                            };
                            if !sent {
                                stdin = None;
                            }
                        }
                    }
                    // v5: the client closed its stdin.
                    Some(255) if v5 && data.first() == Some(&0) => stdin = None,
                    _ => {}
                }
                if frame.fin {
                    channel = None;
                }
            }
            _ => break,
        }
    }
    drop(stdin);
    closed.cancel();
}

/// `exec`/`attach` over a remotecommand WebSocket.
async fn ws_exec<S>(io: S, plan: ExecPlan, v5: bool)
where
    S: AsyncRead + AsyncWrite + Send + 'static,
{
    let (rd, wr) = tokio::io::split(io);
    let writer = WsWriter::new(Box::new(wr));
    let closed = CancellationToken::new();
    let (stdin_tx, stdin_rx) = mpsc::channel::<Bytes>(16);
    let reader = tokio::spawn(ws_exec_reader(
        rd,
        writer.clone(),
        stdin_tx,
        v5,
        closed.clone(),
    ));
    let p = &plan.params;
    // An empty message on the lowest writable channel tells old clients the streams are up.
    let first = if p.stdout {
        1
    } else if p.stderr && !p.tty {
        2
    } else {
        3
    };
    let _ = writer.channel(first, &[]).await;
    let stdout = if p.stdout {
        Sink::Ws(writer.clone(), 1)
    } else {
        Sink::Discard
    };
    let stdin = p.stdin.then_some(stdin_rx);
    let code = run_simulated(&plan.behaviour, p.tty, stdin, &stdout, &closed).await;
    if !closed.is_cancelled() {
        let status = exit_status(code, &p.command);
        let _ = writer.channel(3, status.to_string().as_bytes()).await;
        writer.close(1000).await;
        // Let the client answer the close, then hang up.
        let _ = timeout(CLOSE_TIMEOUT, closed.cancelled()).await;
    }
    closed.cancel();
    let _ = reader.await;
    writer.shutdown().await;
}

/// Turns a WebSocket carrying a byte stream in binary messages (kubectl's SPDY tunnel) into
/// a plain byte stream.
fn ws_tunnel<S>(io: S) -> tokio::io::DuplexStream
where
    S: AsyncRead + AsyncWrite + Send + 'static,
{
    let (near, far) = tokio::io::duplex(64 << 10);
    let (mut rd, wr) = tokio::io::split(io);
    let writer = WsWriter::new(Box::new(wr));
    let (mut far_rd, mut far_wr) = tokio::io::split(far);
    let inbound_writer = writer.clone();
    tokio::spawn(async move {
        loop {
            let Ok(Ok(Some(frame))) = timeout(IDLE_TIMEOUT, read_ws_frame(&mut rd)).await else {
                break;
            };
            match frame.opcode {
                OP_TEXT | OP_BINARY | OP_CONTINUATION => {
                    let w = timeout(WRITE_TIMEOUT, far_wr.write_all(&frame.payload)).await;
                    if !matches!(w, Ok(Ok(()))) {
                        break;
                    }
                }
                OP_PING => {
                    let _ = inbound_writer.frame(OP_PONG, &frame.payload).await;
                }
                OP_PONG => {}
                OP_CLOSE => {
                    inbound_writer.close(1000).await;
                    break;
                }
                _ => break,
            }
        }
        let _ = timeout(WRITE_TIMEOUT, far_wr.shutdown()).await;
    });
    tokio::spawn(async move {
        let mut buf = vec![0u8; CHUNK];
        loop {
            match far_rd.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if writer.frame(OP_BINARY, &buf[..n]).await.is_err() {
                        break;
                    }
                }
            }
        }
        writer.close(1000).await;
        writer.shutdown().await;
    });
    near
}

// ---------------------------------------------------------------------------------------
// SPDY/3.1 (the subset the kubelet's streaming server uses)

const SPDY_SYN_STREAM: u16 = 1;
const SPDY_SYN_REPLY: u16 = 2;
const SPDY_RST_STREAM: u16 = 3;
const SPDY_PING: u16 = 6;
const SPDY_GOAWAY: u16 = 7;
const SPDY_HEADERS: u16 = 8;
const SPDY_FLAG_FIN: u8 = 0x01;
const SPDY_RST_REFUSED: u32 = 3;

/// The SPDY/3 header-compression dictionary (draft-mbelshe-httpbis-spdy-00 §2.6.10.1):
/// length-prefixed header names and values, then common value fragments.
fn spdy_dictionary() -> &'static [u8] {
    static DICT: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
    DICT.get_or_init(|| {
        const WORDS: [&str; 65] = [
            "options", "head", "post", "put", "delete", "trace", "accept", "accept-charset",
            "accept-encoding", "accept-language", "accept-ranges", "age", "allow",
            "authorization", "cache-control", "connection", "content-base", "content-encoding",
            "content-language", "content-length", "content-location", "content-md5",
            "content-range", "content-type", "date", "etag", "expect", "expires", "from",
            "host", "if-match", "if-modified-since", "if-none-match", "if-range",
            "if-unmodified-since", "last-modified", "location", "max-forwards", "pragma",
            "proxy-authenticate", "proxy-authorization", "range", "referer", "retry-after",
            "server", "te", "trailer", "transfer-encoding", "upgrade", "user-agent", "vary",
            "via", "warning", "www-authenticate", "method", "get", "status", "200 OK",
            "version", "HTTP/1.1", "url", "public", "set-cookie", "keep-alive", "origin",
        ];
        const TAIL: &str = concat!(
            "100101201202205206300302303304305306307402405406407408409410411412413414415416417502504505",
            "203 Non-Authoritative Information204 No Content301 Moved Permanently400 Bad Request",
            "401 Unauthorized403 Forbidden404 Not Found500 Internal Server Error501 Not Implemented",
            "503 Service UnavailableJan Feb Mar Apr May Jun Jul Aug Sept Oct Nov Dec 00:00:00 ",
            "Mon, Tue, Wed, Thu, Fri, Sat, Sun, GMTchunked,text/html,image/png,image/jpg,image/gif,",
            "application/xml,application/xhtml+xml,text/plain,text/javascript,publicprivatemax-age=",
            "gzip,deflate,sdchcharset=utf-8charset=iso-8859-1,utf-,*,enq=0.",
        );
        let mut d = Vec::with_capacity(1423);
        for w in WORDS {
            d.extend_from_slice(&(w.len() as u32).to_be_bytes());
            d.extend_from_slice(w.as_bytes());
        }
        d.extend_from_slice(TAIL.as_bytes());
        d
    })
}

fn adler32(data: &[u8]) -> u32 {
    let (mut a, mut b) = (1u32, 0u32);
    for chunk in data.chunks(5552) {
        for &x in chunk {
            a += u32::from(x);
            b += a;
        }
        a %= 65521;
        b %= 65521;
    }
    (b << 16) | a
}

/// Why a SPDY header block could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
enum InflateError {
    #[error("bad zlib header")]
    Header,
    #[error("zlib dictionary mismatch")]
    Dictionary,
    #[error("truncated deflate data")]
    Truncated,
    #[error("invalid deflate data")]
    Invalid,
    #[error("header block too large")]
    TooLarge,
}

/// LSB-first bit reader over one frame's compressed bytes.
struct Bits<'a> {
    data: &'a [u8],
    pos: usize,
    buf: u32,
    count: u32,
}

impl<'a> Bits<'a> {
    fn new(data: &'a [u8]) -> Bits<'a> {
        Bits {
            data,
            pos: 0,
            buf: 0,
            count: 0,
        }
    }

    fn need(&mut self, n: u32) -> Result<u32, InflateError> {
        while self.count < n {
            let byte = *self.data.get(self.pos).ok_or(InflateError::Truncated)?;
            self.pos += 1;
            self.buf |= u32::from(byte) << self.count;
            self.count += 8;
        }
        let v = self.buf & ((1u32 << n) - 1);
        self.buf >>= n;
        self.count -= n;
        Ok(v)
    }

    /// Drops the rest of the current byte.
    fn align(&mut self) {
        self.buf = 0;
        self.count = 0;
    }

    fn remaining_bits(&self) -> usize {
        (self.data.len() - self.pos) * 8 + self.count as usize
    }
}

/// A canonical Huffman code (counts per length, symbols by code).
struct Huffman {
    count: [u16; 16],
    symbol: Vec<u16>,
}

impl Huffman {
    fn new(lengths: &[u8]) -> Result<Huffman, InflateError> {
        let mut count = [0u16; 16];
        for &l in lengths {
            count[usize::from(l)] += 1;
        }
        let mut left: i32 = 1;
        for &c in &count[1..] {
            left <<= 1;
            left -= i32::from(c);
            if left < 0 {
                return Err(InflateError::Invalid);
            }
        }
        let mut offs = [0u16; 16];
        for len in 1..15 {
            offs[len + 1] = offs[len] + count[len];
        }
        let mut symbol = vec![0u16; lengths.len()];
        for (sym, &l) in lengths.iter().enumerate() {
            if l != 0 {
                let slot = &mut offs[usize::from(l)];
                symbol[usize::from(*slot)] = sym as u16;
                *slot += 1;
            }
        }
        Ok(Huffman { count, symbol })
    }

    fn decode(&self, bits: &mut Bits<'_>) -> Result<u16, InflateError> {
        let (mut code, mut first, mut index) = (0i32, 0i32, 0i32);
        for &count in &self.count[1..] {
            code |= bits.need(1)? as i32;
            let count = i32::from(count);
            if code - count < first {
                let i =
                    usize::try_from(index + (code - first)).map_err(|_| InflateError::Invalid)?;
                return self.symbol.get(i).copied().ok_or(InflateError::Invalid);
            }
            index += count;
            first += count;
            first <<= 1;
            code <<= 1;
        }
        Err(InflateError::Invalid)
    }
}

const LEN_BASE: [u16; 29] = [
    3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23, 27, 31, 35, 43, 51, 59, 67, 83, 99, 115, 131,
    163, 195, 227, 258,
];
const LEN_EXTRA: [u8; 29] = [
    0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0,
];
const DIST_BASE: [u16; 30] = [
    1, 2, 3, 4, 5, 7, 9, 13, 17, 25, 33, 49, 65, 97, 129, 193, 257, 385, 513, 769, 1025, 1537,
    2049, 3073, 4097, 6145, 8193, 12289, 16385, 24577,
];
const DIST_EXTRA: [u8; 30] = [
    0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13,
    13,
];
const CODE_LENGTH_ORDER: [usize; 19] = [
    16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15,
];
const WINDOW: usize = 32 << 10;

/// The receiving end of a SPDY connection's header compression: one zlib stream (preset
/// dictionary) across all header blocks, each ending on a sync flush.
struct Inflater {
    /// The last 32 KiB of output (the dictionary at first).
    window: Vec<u8>,
    header_read: bool,
}

impl Inflater {
    fn new() -> Inflater {
        Inflater {
            window: spdy_dictionary().to_vec(),
            header_read: false,
        }
    }

    /// Inflates one header block.
    fn inflate(&mut self, mut input: &[u8]) -> Result<Vec<u8>, InflateError> {
        if !self.header_read {
            let [cmf, flg, rest @ ..] = input else {
                return Err(InflateError::Header);
            };
            if cmf & 0x0f != 8 || (u16::from(*cmf) << 8 | u16::from(*flg)) % 31 != 0 {
                return Err(InflateError::Header);
            }
            input = rest;
            if flg & 0x20 != 0 {
                let [a, b, c, d, rest @ ..] = input else {
                    return Err(InflateError::Header);
                };
                if u32::from_be_bytes([*a, *b, *c, *d]) != adler32(spdy_dictionary()) {
                    return Err(InflateError::Dictionary);
                }
                input = rest;
            }
            self.header_read = true;
        }
        let start = self.window.len();
        let mut bits = Bits::new(input);
        // Each block is at least 10 bits; fewer left are the padding of the last byte.
        while bits.remaining_bits() >= 8 {
            let _final = bits.need(1)?;
            match bits.need(2)? {
                0 => self.stored(&mut bits)?,
                1 => {
                    let (lit, dist) = fixed_codes()?;
                    self.codes(&mut bits, &lit, &dist, start)?;
                }
                2 => {
                    let (lit, dist) = dynamic_codes(&mut bits)?;
                    self.codes(&mut bits, &lit, &dist, start)?;
                }
                _ => return Err(InflateError::Invalid),
            }
            if self.window.len() - start > MAX_HEADER_BLOCK {
                return Err(InflateError::TooLarge);
            }
        }
        let out = self.window[start..].to_vec();
        if self.window.len() > WINDOW {
            self.window.drain(..self.window.len() - WINDOW);
        }
        Ok(out)
    }

    fn stored(&mut self, bits: &mut Bits<'_>) -> Result<(), InflateError> {
        bits.align();
        let len = bits.need(16)?;
        let nlen = bits.need(16)?;
        if len != !nlen & 0xffff {
            return Err(InflateError::Invalid);
        }
        for _ in 0..len {
            self.window.push(bits.need(8)? as u8);
        }
        Ok(())
    }

    fn codes(
        &mut self,
        bits: &mut Bits<'_>,
        lit: &Huffman,
        dist: &Huffman,
        start: usize,
    ) -> Result<(), InflateError> {
        loop {
            let sym = lit.decode(bits)?;
            match sym {
                0..=255 => self.window.push(sym as u8),
                256 => return Ok(()),
                _ => {
                    let i = usize::from(sym - 257);
                    let base = *LEN_BASE.get(i).ok_or(InflateError::Invalid)?;
                    let len = usize::from(base) + bits.need(u32::from(LEN_EXTRA[i]))? as usize;
                    let d = usize::from(dist.decode(bits)?);
                    let base = *DIST_BASE.get(d).ok_or(InflateError::Invalid)?;
                    let distance =
                        usize::from(base) + bits.need(u32::from(DIST_EXTRA[d]))? as usize;
                    if distance > self.window.len() {
                        return Err(InflateError::Invalid);
                    }
                    for _ in 0..len {
                        let b = self.window[self.window.len() - distance];
                        self.window.push(b);
                    }
                }
            }
            if self.window.len() - start > MAX_HEADER_BLOCK {
                return Err(InflateError::TooLarge);
            }
        }
    }
}

fn fixed_codes() -> Result<(Huffman, Huffman), InflateError> {
    let mut lengths = [0u8; 288];
    for (i, l) in lengths.iter_mut().enumerate() {
        *l = match i {
            0..=143 => 8,
            144..=255 => 9,
            256..=279 => 7,
            _ => 8,
        };
    }
    Ok((Huffman::new(&lengths)?, Huffman::new(&[5u8; 30])?))
}

fn dynamic_codes(bits: &mut Bits<'_>) -> Result<(Huffman, Huffman), InflateError> {
    let nlen = bits.need(5)? as usize + 257;
    let ndist = bits.need(5)? as usize + 1;
    let ncode = bits.need(4)? as usize + 4;
    if nlen > 286 || ndist > 30 {
        return Err(InflateError::Invalid);
    }
    let mut code_lengths = [0u8; 19];
    for &i in &CODE_LENGTH_ORDER[..ncode] {
        code_lengths[i] = bits.need(3)? as u8;
    }
    let lencode = Huffman::new(&code_lengths)?;
    let mut lengths = [0u8; 316];
    let mut index = 0;
    while index < nlen + ndist {
        let sym = lencode.decode(bits)?;
        let (value, repeat) = match sym {
            0..=15 => (sym as u8, 1),
            16 => {
                let prev = *lengths
                    .get(index.wrapping_sub(1))
                    .filter(|_| index > 0)
                    .ok_or(InflateError::Invalid)?;
                (prev, 3 + bits.need(2)? as usize)
            }
            17 => (0, 3 + bits.need(3)? as usize),
            18 => (0, 11 + bits.need(7)? as usize),
            _ => return Err(InflateError::Invalid),
        };
        if index + repeat > nlen + ndist {
            return Err(InflateError::Invalid);
        }
        lengths[index..index + repeat].fill(value);
        index += repeat;
    }
    if lengths[256] == 0 {
        return Err(InflateError::Invalid);
    }
    Ok((
        Huffman::new(&lengths[..nlen])?,
        Huffman::new(&lengths[nlen..nlen + ndist])?,
    ))
}

/// The sending end of the header compression: stored deflate blocks after the zlib header.
struct Deflater {
    header_written: bool,
}

impl Deflater {
    fn compress(&mut self, raw: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(raw.len() + 16);
        if !self.header_written {
            // Deflate, 32 KiB window, preset dictionary; (0x78BB % 31 == 0).
            out.extend_from_slice(&[0x78, 0xbb]);
            out.extend_from_slice(&adler32(spdy_dictionary()).to_be_bytes());
            self.header_written = true;
        }
        for chunk in raw.chunks(usize::from(u16::MAX)) {
            let len = chunk.len() as u16;
            out.push(0x00); // BFINAL=0, BTYPE=00 (stored), padded to the byte
            out.extend_from_slice(&len.to_le_bytes());
            out.extend_from_slice(&(!len).to_le_bytes());
            out.extend_from_slice(chunk);
        }
        // A sync flush (an empty stored block), as zlib writes one: a reader hands out what it
        // has at this marker instead of reading on past the end of the frame (Go's flate
        // reader would then keep an unexpected-EOF error for the next frame).
        out.extend_from_slice(&[0x00, 0x00, 0x00, 0xff, 0xff]);
        out
    }
}

/// A SPDY/3 name/value header block (uncompressed form).
fn encode_header_block(headers: &[(&str, &str)]) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&(headers.len() as u32).to_be_bytes());
    for (name, value) in headers {
        out.extend_from_slice(&(name.len() as u32).to_be_bytes());
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(&(value.len() as u32).to_be_bytes());
        out.extend_from_slice(value.as_bytes());
    }
    out
}

fn parse_header_block(raw: &[u8]) -> Option<Vec<(String, String)>> {
    fn take<'a>(raw: &mut &'a [u8], n: usize) -> Option<&'a [u8]> {
        if raw.len() < n {
            return None;
        }
        let (head, rest) = raw.split_at(n);
        *raw = rest;
        Some(head)
    }
    fn u32_at(raw: &mut &[u8]) -> Option<usize> {
        let b = take(raw, 4)?;
        Some(u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize)
    }
    let mut raw = raw;
    let count = u32_at(&mut raw)?;
    if count > MAX_STREAMS {
        return None;
    }
    let mut out = Vec::with_capacity(count);
    for _ in 0..count {
        let n = u32_at(&mut raw)?;
        let name = String::from_utf8_lossy(take(&mut raw, n)?).to_ascii_lowercase();
        let n = u32_at(&mut raw)?;
        let value = take(&mut raw, n)?;
        for v in value.split(|b| *b == 0) {
            out.push((name.clone(), String::from_utf8_lossy(v).into_owned()));
        }
    }
    Some(out)
}

/// One SPDY frame as read.
#[derive(Debug)]
enum SpdyFrame {
    Control {
        kind: u16,
        flags: u8,
        payload: Vec<u8>,
    },
    Data {
        id: u32,
        flags: u8,
        payload: Vec<u8>,
    },
}

async fn read_spdy_frame<R: AsyncRead + Unpin>(r: &mut R) -> std::io::Result<Option<SpdyFrame>> {
    let mut head = [0u8; 8];
    if !read_head(r, &mut head).await? {
        return Ok(None);
    }
    let word = u32::from_be_bytes([head[0], head[1], head[2], head[3]]);
    let flags = head[4];
    let len = u32::from_be_bytes([0, head[5], head[6], head[7]]) as usize;
    if len > MAX_FRAME {
        return Err(invalid("SPDY frame too large"));
    }
    let mut payload = vec![0u8; len];
    r.read_exact(&mut payload).await?;
    if word & 0x8000_0000 != 0 {
        if (word >> 16) & 0x7fff != 3 {
            return Err(invalid("unsupported SPDY version"));
        }
        Ok(Some(SpdyFrame::Control {
            kind: (word & 0xffff) as u16,
            flags,
            payload,
        }))
    } else {
        Ok(Some(SpdyFrame::Data {
            id: word & 0x7fff_ffff,
            flags,
            payload,
        }))
    }
}

fn spdy_control(kind: u16, flags: u8, body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len() + 8);
    out.extend_from_slice(&[0x80, 0x03]);
    out.extend_from_slice(&kind.to_be_bytes());
    out.push(flags);
    out.extend_from_slice(&(body.len() as u32).to_be_bytes()[1..]);
    out.extend_from_slice(body);
    out
}

fn spdy_data(id: u32, flags: u8, data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len() + 8);
    out.extend_from_slice(&(id & 0x7fff_ffff).to_be_bytes());
    out.push(flags);
    out.extend_from_slice(&(data.len() as u32).to_be_bytes()[1..]);
    out.extend_from_slice(data);
    out
}

fn be32(b: &[u8], at: usize) -> Option<u32> {
    let s = b.get(at..at + 4)?;
    Some(u32::from_be_bytes([s[0], s[1], s[2], s[3]]))
}

/// What the session's writer sends.
#[derive(Debug)]
enum SpdyOutFrame {
    Reply(u32),
    Reset(u32, u32),
    Ping(u32),
    Data(u32, Bytes),
    Fin(u32),
}

/// Sends frames on a SPDY connection.
#[derive(Clone)]
struct SpdyOut(mpsc::Sender<SpdyOutFrame>);

impl SpdyOut {
    async fn send(&self, f: SpdyOutFrame) -> std::io::Result<()> {
        self.0.send(f).await.map_err(|_| broken_pipe())
    }

    async fn data(&self, id: u32, data: &[u8]) -> std::io::Result<()> {
        for chunk in data.chunks(CHUNK) {
            self.send(SpdyOutFrame::Data(id, Bytes::copy_from_slice(chunk)))
                .await?;
        }
        Ok(())
    }

    async fn fin(&self, id: u32) {
        let _ = self.send(SpdyOutFrame::Fin(id)).await;
    }
}

/// A stream the client opened.
struct SpdyStream {
    id: u32,
    headers: Vec<(String, String)>,
    /// The client's data; ends at its FIN (or reset, or the end of the connection).
    data: mpsc::Receiver<Bytes>,
}

impl SpdyStream {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// A served SPDY connection.
struct SpdySession {
    out: SpdyOut,
    incoming: mpsc::Receiver<SpdyStream>,
    /// Cancelled when the connection ends; cancel it to end the connection.
    closed: CancellationToken,
}

/// Serves SPDY/3.1 on `io`: streams that `accept` refuses are reset, the others are
/// answered and handed out; pings are answered.
fn spdy_serve<S>(io: S, accept: fn(&[(String, String)]) -> bool) -> SpdySession
where
    S: AsyncRead + AsyncWrite + Send + 'static,
{
    let (rd, wr) = tokio::io::split(io);
    let (out_tx, out_rx) = mpsc::channel(64);
    let (in_tx, in_rx) = mpsc::channel(16);
    let closed = CancellationToken::new();
    tokio::spawn(spdy_writer(wr, out_rx));
    tokio::spawn(spdy_reader(
        rd,
        SpdyOut(out_tx.clone()),
        in_tx,
        accept,
        closed.clone(),
    ));
    SpdySession {
        out: SpdyOut(out_tx),
        incoming: in_rx,
        closed,
    }
}

async fn spdy_writer<W: AsyncWrite + Unpin>(mut wr: W, mut rx: mpsc::Receiver<SpdyOutFrame>) {
    let mut deflater = Deflater {
        header_written: false,
    };
    while let Some(frame) = rx.recv().await {
        let bytes = match frame {
            SpdyOutFrame::Reply(id) => {
                let mut body = id.to_be_bytes().to_vec();
                body.extend(deflater.compress(&encode_header_block(&[])));
                spdy_control(SPDY_SYN_REPLY, 0, &body)
            }
            SpdyOutFrame::Reset(id, status) => {
                let mut body = id.to_be_bytes().to_vec();
                body.extend_from_slice(&status.to_be_bytes());
                spdy_control(SPDY_RST_STREAM, 0, &body)
            }
            SpdyOutFrame::Ping(id) => spdy_control(SPDY_PING, 0, &id.to_be_bytes()),
            SpdyOutFrame::Data(id, data) => spdy_data(id, 0, &data),
            SpdyOutFrame::Fin(id) => spdy_data(id, SPDY_FLAG_FIN, &[]),
        };
        if !matches!(
            timeout(WRITE_TIMEOUT, wr.write_all(&bytes)).await,
            Ok(Ok(()))
        ) {
            return;
        }
        if rx.is_empty() && !matches!(timeout(WRITE_TIMEOUT, wr.flush()).await, Ok(Ok(()))) {
            return;
        }
    }
    let _ = timeout(WRITE_TIMEOUT, wr.shutdown()).await;
}

async fn spdy_reader<R: AsyncRead + Unpin>(
    mut rd: R,
    out: SpdyOut,
    incoming: mpsc::Sender<SpdyStream>,
    accept: fn(&[(String, String)]) -> bool,
    closed: CancellationToken,
) {
    let mut inflater = Inflater::new();
    let mut streams: HashMap<u32, mpsc::Sender<Bytes>> = HashMap::new();
    loop {
        let frame = tokio::select! {
            f = timeout(IDLE_TIMEOUT, read_spdy_frame(&mut rd)) => f,
            _ = closed.cancelled() => break,
        };
        let Ok(Ok(Some(frame))) = frame else { break };
        match frame {
            SpdyFrame::Data { id, flags, payload } => {
                if !payload.is_empty()
                    && let Some(tx) = streams.get(&id)
                {
                    let sent = tokio::select! {
                        r = tx.send(Bytes::from(payload)) => r.is_ok(),
                        _ = closed.cancelled() => break,
                    };
                    if !sent {
                        // Nobody reads this stream: drop its data from now on.
                        streams.remove(&id);
                    }
                }
                if flags & SPDY_FLAG_FIN != 0 {
                    streams.remove(&id);
                }
            }
            SpdyFrame::Control {
                kind,
                flags,
                payload,
            } => match kind {
                SPDY_SYN_STREAM => {
                    let (Some(id), Some(block)) = (be32(&payload, 0), payload.get(10..)) else {
                        break;
                    };
                    let id = id & 0x7fff_ffff;
                    // Every header block goes through the inflater: it is one zlib stream.
                    let Some(headers) = inflater
                        .inflate(block)
                        .ok()
                        .and_then(|raw| parse_header_block(&raw))
                    else {
                        tracing::debug!("unreadable SPDY header block");
                        break;
                    };
                    if streams.len() >= MAX_STREAMS || !accept(&headers) {
                        if out
                            .send(SpdyOutFrame::Reset(id, SPDY_RST_REFUSED))
                            .await
                            .is_err()
                        {
                            break;
                        }
                        continue;
                    }
                    let (tx, rx) = mpsc::channel(16);
                    if flags & SPDY_FLAG_FIN == 0 {
                        streams.insert(id, tx);
                    }
                    if out.send(SpdyOutFrame::Reply(id)).await.is_err() {
                        break;
                    }
                    let stream = SpdyStream {
                        id,
                        headers,
                        data: rx,
                    };
                    let delivered = tokio::select! {
                        r = incoming.send(stream) => r.is_ok(),
                        _ = closed.cancelled() => false,
                    };
                    if !delivered {
                        break;
                    }
                }
                SPDY_SYN_REPLY | SPDY_HEADERS => {
                    let Some(block) = payload.get(4..) else { break };
                    if inflater.inflate(block).is_err() {
                        break;
                    }
                }
                SPDY_RST_STREAM => {
                    if let Some(id) = be32(&payload, 0) {
                        streams.remove(&(id & 0x7fff_ffff));
                    }
                }
                SPDY_PING => {
                    let Some(id) = be32(&payload, 0) else { break };
                    if out.send(SpdyOutFrame::Ping(id)).await.is_err() {
                        break;
                    }
                }
                SPDY_GOAWAY => break,
                // SETTINGS, WINDOW_UPDATE (no flow control here, as in spdystream).
                _ => {}
            },
        }
    }
    closed.cancel();
}

fn accept_exec_stream(headers: &[(String, String)]) -> bool {
    headers.iter().any(|(n, v)| {
        n == "streamtype"
            && matches!(
                v.as_str(),
                "error" | "stdin" | "stdout" | "stderr" | "resize"
            )
    })
}

/// `exec`/`attach` over SPDY: the client opens one stream per channel.
async fn spdy_exec<S>(io: S, plan: ExecPlan)
where
    S: AsyncRead + AsyncWrite + Send + 'static,
{
    let SpdySession {
        out,
        mut incoming,
        closed,
    } = spdy_serve(io, accept_exec_stream);
    let p = &plan.params;
    let mut wanted = vec!["error"];
    for (on, kind) in [
        (p.stdin, "stdin"),
        (p.stdout, "stdout"),
        (p.stderr && !p.tty, "stderr"),
        (p.tty, "resize"),
    ] {
        if on {
            wanted.push(kind);
        }
    }
    let mut streams: HashMap<String, SpdyStream> = HashMap::new();
    let deadline = Instant::now() + STREAM_CREATION_TIMEOUT;
    while !wanted.iter().all(|w| streams.contains_key(*w)) {
        match tokio::time::timeout_at(deadline, incoming.recv()).await {
            Ok(Some(s)) => {
                let kind = s.header("streamtype").unwrap_or("").to_string();
                streams.insert(kind, s);
            }
            _ => {
                tracing::debug!("timed out waiting for the client to create streams");
                closed.cancel();
                return;
            }
        }
    }
    let sink = |kind: &str| {
        streams
            .get(kind)
            .map_or(Sink::Discard, |s| Sink::Spdy(out.clone(), s.id))
    };
    let stdout = sink("stdout");
    let ids: Vec<u32> = ["stdout", "stderr"]
        .iter()
        .filter_map(|k| streams.get(*k).map(|s| s.id))
        .collect();
    let error_id = streams.get("error").map(|s| s.id);
    let stdin = streams.remove("stdin").map(|s| s.data);
    // Resize events are not used by an echo.
    streams.remove("resize");
    let code = run_simulated(&plan.behaviour, p.tty, stdin, &stdout, &closed).await;
    for id in ids {
        out.fin(id).await;
    }
    if let Some(id) = error_id {
        let status = exit_status(code, &p.command);
        let _ = out.data(id, status.to_string().as_bytes()).await;
        out.fin(id).await;
    }
    drop(out);
    // The client hangs up once it has read the status.
    let _ = timeout(CLOSE_TIMEOUT, closed.cancelled()).await;
    closed.cancel();
}

/// The kubelet's checks of a port-forward stream's headers.
fn accept_port_forward_stream(headers: &[(String, String)]) -> bool {
    let get = |name: &str| {
        headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    };
    let port_ok = get("port")
        .and_then(|p| p.parse::<u16>().ok())
        .is_some_and(|p| p > 0);
    port_ok && matches!(get("streamtype"), Some("error" | "data"))
}

/// Port forwarding over SPDY: every port of the simulated pod echoes.
async fn spdy_port_forward<S>(io: S)
where
    S: AsyncRead + AsyncWrite + Send + 'static,
{
    let SpdySession {
        out,
        mut incoming,
        closed,
    } = spdy_serve(io, accept_port_forward_stream);
    #[derive(Default)]
    struct Pair {
        error: Option<SpdyStream>,
        data: Option<SpdyStream>,
    }
    let mut pairs: HashMap<String, Pair> = HashMap::new();
    while let Some(stream) = incoming.recv().await {
        let kind = stream.header("streamtype").unwrap_or("").to_string();
        // Old clients send no request id: derive one from the stream ids, as the kubelet does.
        let request = match stream.header("requestid") {
            Some(r) => r.to_string(),
            None if kind == "data" => stream.id.saturating_sub(2).to_string(),
            None => stream.id.to_string(),
        };
        if !pairs.contains_key(&request) && pairs.len() >= MAX_STREAMS {
            let _ = out
                .send(SpdyOutFrame::Reset(stream.id, SPDY_RST_REFUSED))
                .await;
            continue;
        }
        let pair = pairs.entry(request.clone()).or_default();
        let slot = if kind == "error" {
            &mut pair.error
        } else {
            &mut pair.data
        };
        if slot.is_some() {
            let msg = format!(
                "error processing stream for request {request}: {kind} stream already assigned"
            );
            if let Some(e) = &pair.error {
                let _ = out.data(e.id, msg.as_bytes()).await;
            }
            continue;
        }
        *slot = Some(stream);
        if pair.error.is_some()
            && pair.data.is_some()
            && let Some(Pair {
                error: Some(error),
                data: Some(data),
            }) = pairs.remove(&request)
        {
            tokio::spawn(echo_stream(out.clone(), error, data));
        }
    }
    closed.cancel();
}

/// One forwarded connection: echo the data stream, then close both streams.
async fn echo_stream(out: SpdyOut, error: SpdyStream, mut data: SpdyStream) {
    while let Some(chunk) = data.data.recv().await {
        if out.data(data.id, &chunk).await.is_err() {
            return;
        }
    }
    out.fin(data.id).await;
    out.fin(error.id).await;
}

// ---------------------------------------------------------------------------------------
// The relay to a physical cluster

/// Request headers the relay passes on (the upgrade handshake; never credentials).
const RELAYED_REQUEST_HEADERS: [&str; 7] = [
    "connection",
    "upgrade",
    "sec-websocket-key",
    "sec-websocket-version",
    "sec-websocket-protocol",
    "sec-websocket-extensions",
    "x-stream-protocol-version",
];

/// 101 headers the relay passes back.
const RELAYED_RESPONSE_HEADERS: [&str; 6] = [
    "connection",
    "upgrade",
    "sec-websocket-accept",
    "sec-websocket-protocol",
    "sec-websocket-extensions",
    "x-stream-protocol-version",
];

trait Stream: AsyncRead + AsyncWrite + Send + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin> Stream for T {}

/// Relays the upgrade to the pod's physical cluster, then the bytes both ways.
async fn relay(
    physical: &crate::syncer::PhysicalApi,
    pname: &str,
    subresource: &str,
    mut req: Request,
) -> Result<Response, ApiError> {
    let raw = physical
        .raw_connection()
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    let mut target = format!(
        "{}{}",
        raw.url.path().trim_end_matches('/'),
        physical.pod_subresource_path(pname, subresource)
    );
    if let Some(q) = req.uri().query() {
        target.push('?');
        target.push_str(q);
    }
    let mut conn = timeout(DIAL_TIMEOUT, dial(&raw))
        .await
        .map_err(|_| ApiError::Internal("error dialing backend: timed out".into()))?
        .map_err(|e| ApiError::Internal(format!("error dialing backend: {e}")))?;
    let head = request_head(
        req.method(),
        &target,
        &raw.url,
        raw.authorization.as_deref(),
        req.headers(),
    );
    let sent = timeout(WRITE_TIMEOUT, async {
        conn.write_all(head.as_bytes()).await?;
        conn.flush().await
    })
    .await;
    if !matches!(sent, Ok(Ok(()))) {
        return Err(ApiError::Internal(
            "error sending the request to the backend".into(),
        ));
    }
    let (status, headers, leftover) = timeout(RESPONSE_TIMEOUT, read_response_head(&mut conn))
        .await
        .map_err(|_| ApiError::Timeout("the backend did not answer in time".into()))?
        .map_err(|e| ApiError::Internal(format!("error reading the backend's response: {e}")))?;
    if status != 101 {
        let body = timeout(RESPONSE_TIMEOUT, read_body(&mut conn, &headers, leftover))
            .await
            .map_err(|_| ApiError::Timeout("the backend did not answer in time".into()))?
            .map_err(|e| {
                ApiError::Internal(format!("error reading the backend's response: {e}"))
            })?;
        let code = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_GATEWAY);
        let mut resp = (code, body).into_response();
        if let Some((_, ct)) = headers.iter().find(|(n, _)| n == "content-type")
            && let Ok(v) = HeaderValue::from_bytes(ct)
        {
            resp.headers_mut().insert(header::CONTENT_TYPE, v);
        }
        return Ok(resp);
    }
    let mut resp = Response::new(Body::empty());
    *resp.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    for (name, value) in &headers {
        if RELAYED_RESPONSE_HEADERS.contains(&name.as_str())
            && let (Ok(n), Ok(v)) = (
                HeaderName::from_bytes(name.as_bytes()),
                HeaderValue::from_bytes(value),
            )
        {
            resp.headers_mut().append(n, v);
        }
    }
    let on_upgrade = hyper::upgrade::on(&mut req);
    tokio::spawn(async move {
        let upgraded = match timeout(UPGRADE_TIMEOUT, on_upgrade).await {
            Ok(Ok(u)) => u,
            _ => return,
        };
        let mut client = TokioIo::new(upgraded);
        if !leftover.is_empty()
            && !matches!(
                timeout(WRITE_TIMEOUT, client.write_all(&leftover)).await,
                Ok(Ok(()))
            )
        {
            return;
        }
        pump(client, conn).await;
    });
    Ok(resp)
}

/// TCP (+ TLS for https) to the physical API server.
async fn dial(raw: &crate::syncer::RawConnection) -> std::io::Result<Box<dyn Stream>> {
    let https = raw.url.scheme_str() != Some("http");
    let host = raw
        .url
        .host()
        .ok_or_else(|| invalid("the cluster URL has no host"))?
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_string();
    let port = raw.url.port_u16().unwrap_or(if https { 443 } else { 80 });
    let tcp = tokio::net::TcpStream::connect((host.as_str(), port)).await?;
    tcp.set_nodelay(true)?;
    if !https {
        return Ok(Box::new(tcp));
    }
    let mut tls = raw.tls.clone();
    // An upgrade is HTTP/1.1 only.
    tls.alpn_protocols = vec![b"http/1.1".to_vec()];
    let name = rustls_pki_types::ServerName::try_from(host)
        .map_err(|_| invalid("the cluster URL's host is not a valid server name"))?;
    let stream = tokio_rustls::TlsConnector::from(Arc::new(tls))
        .connect(name, tcp)
        .await?;
    Ok(Box::new(stream))
}

fn request_head(
    method: &Method,
    target: &str,
    url: &axum::http::Uri,
    authorization: Option<&str>,
    headers: &HeaderMap,
) -> String {
    let authority = url.authority().map_or("", |a| a.as_str());
    let mut head = format!("{method} {target} HTTP/1.1\r\nHost: {authority}\r\n");
    if let Some(auth) = authorization.filter(|a| !a.contains(['\r', '\n'])) {
        head.push_str(&format!("Authorization: {auth}\r\n"));
    }
    for name in RELAYED_REQUEST_HEADERS {
        for value in headers.get_all(name) {
            if let Ok(v) = value.to_str() {
                head.push_str(&format!("{name}: {v}\r\n"));
            }
        }
    }
    if let Some(ua) = headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
    {
        head.push_str(&format!("User-Agent: {ua}\r\n"));
    }
    if method != Method::GET && method != Method::HEAD {
        head.push_str("Content-Length: 0\r\n");
    }
    head.push_str("\r\n");
    head
}

type ResponseHead = (u16, Vec<(String, Vec<u8>)>, Vec<u8>);

/// Reads an HTTP/1.1 response head; returns the status, the headers (lowercase names) and
/// the bytes read past the head.
async fn read_response_head<R: AsyncRead + Unpin>(r: &mut R) -> std::io::Result<ResponseHead> {
    let mut buf: Vec<u8> = Vec::with_capacity(4096);
    let mut chunk = [0u8; 4096];
    loop {
        let n = r.read(&mut chunk).await?;
        if n == 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "connection closed before the response head",
            ));
        }
        buf.extend_from_slice(&chunk[..n]);
        let mut parsed = [httparse::EMPTY_HEADER; 64];
        let mut resp = httparse::Response::new(&mut parsed);
        match resp.parse(&buf) {
            Ok(httparse::Status::Complete(len)) => {
                let status = resp.code.unwrap_or(502);
                let headers = resp
                    .headers
                    .iter()
                    .map(|h| (h.name.to_ascii_lowercase(), h.value.to_vec()))
                    .collect();
                return Ok((status, headers, buf[len..].to_vec()));
            }
            Ok(httparse::Status::Partial) if buf.len() < MAX_HEAD => {}
            Ok(httparse::Status::Partial) => return Err(invalid("response head too large")),
            Err(_) => return Err(invalid("malformed response head")),
        }
    }
}

/// Reads a (bounded) response body: by Content-Length, chunked, or to the end.
async fn read_body<R: AsyncRead + Unpin>(
    r: &mut R,
    headers: &[(String, Vec<u8>)],
    mut buf: Vec<u8>,
) -> std::io::Result<Vec<u8>> {
    let get = |name: &str| {
        headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| String::from_utf8_lossy(v).trim().to_ascii_lowercase())
    };
    let mut chunk = [0u8; 8192];
    if let Some(len) = get("content-length").and_then(|l| l.parse::<usize>().ok()) {
        let len = len.min(MAX_ERROR_BODY);
        while buf.len() < len {
            let n = r.read(&mut chunk).await?;
            if n == 0 {
                break;
            }
            buf.extend_from_slice(&chunk[..n]);
        }
        buf.truncate(len);
        return Ok(buf);
    }
    let chunked = get("transfer-encoding").is_some_and(|t| t.contains("chunked"));
    loop {
        if chunked && let Some(body) = dechunk(&buf) {
            return Ok(body);
        }
        if buf.len() > MAX_ERROR_BODY {
            buf.truncate(MAX_ERROR_BODY);
            return Ok(if chunked { Vec::new() } else { buf });
        }
        let n = r.read(&mut chunk).await?;
        if n == 0 {
            return Ok(if chunked {
                dechunk(&buf).unwrap_or_default()
            } else {
                buf
            });
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// A complete chunked body, or None while it is incomplete.
fn dechunk(mut raw: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let line_end = raw.windows(2).position(|w| w == b"\r\n")?;
        let size_text = String::from_utf8_lossy(&raw[..line_end]);
        let size = usize::from_str_radix(size_text.split(';').next()?.trim(), 16).ok()?;
        raw = &raw[line_end + 2..];
        if size == 0 {
            return Some(out);
        }
        if raw.len() < size + 2 {
            return None;
        }
        out.extend_from_slice(&raw[..size]);
        raw = &raw[size + 2..];
    }
}

/// Copies bytes both ways until both sides are done or nothing moved for `IDLE_TIMEOUT`.
async fn pump<A: Stream, B: Stream>(a: A, b: B) {
    let epoch = Instant::now();
    let last = Arc::new(AtomicU64::new(0));
    let mut a = Tracked {
        inner: a,
        last: last.clone(),
        epoch,
    };
    let mut b = Tracked {
        inner: b,
        last: last.clone(),
        epoch,
    };
    let idle = async {
        let check = Duration::from_secs(60).min(IDLE_TIMEOUT);
        loop {
            tokio::time::sleep(check).await;
            let quiet = epoch.elapsed().as_secs() - last.load(Ordering::Relaxed);
            if quiet >= IDLE_TIMEOUT.as_secs() {
                return;
            }
        }
    };
    tokio::select! {
        r = tokio::io::copy_bidirectional(&mut a, &mut b) => {
            if let Err(e) = r {
                tracing::debug!(error = %e, "stream relay ended");
            }
        }
        _ = idle => tracing::debug!("stream relay idle, closing"),
    }
}

/// A stream that notes when bytes last moved.
struct Tracked<T> {
    inner: T,
    last: Arc<AtomicU64>,
    epoch: Instant,
}

impl<T> Tracked<T> {
    fn touch(&self) {
        self.last
            .store(self.epoch.elapsed().as_secs(), Ordering::Relaxed);
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Tracked<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let r = Pin::new(&mut this.inner).poll_read(cx, buf);
        if matches!(r, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            this.touch();
        }
        r
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Tracked<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let this = self.get_mut();
        let r = Pin::new(&mut this.inner).poll_write(cx, data);
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
            this.touch();
        }
        r
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    #[test]
    fn the_spdy_dictionary_is_the_specs() {
        let d = spdy_dictionary();
        assert_eq!(d.len(), 1423);
        assert_eq!(adler32(d), 0xe3c6_a7c2);
        assert!(d.starts_with(b"\0\0\0\x07options\0\0\0\x04head"));
        assert!(d.ends_with(b",utf-,*,enq=0."));
    }

    #[test]
    fn inflates_header_blocks_of_one_zlib_stream() {
        // Frames compressed by zlib (level 9, the SPDY dictionary, a sync flush after each),
        // as spdystream does; the later ones refer back to the earlier ones.
        let frames = [
            (
                "78f9e3c6a7c202253a48f95b044aab4c16064092b308125b99a054cc68004e872545a989b9d0a2863515141100000000ffff",
                "0000000300000004706f72740000000238300000000972657175657374696400000001300000000a73747265616d74797065000000056572726f72",
            ),
            (
                "224b2ba8944a04000000ffff",
                "0000000300000004706f72740000000238300000000972657175657374696400000001300000000a73747265616d747970650000000464617461",
            ),
        ];
        let mut inflater = Inflater::new();
        for (compressed, raw) in frames {
            assert_eq!(inflater.inflate(&hex(compressed)).unwrap(), hex(raw));
        }
        let headers = parse_header_block(&hex(frames[1].1)).unwrap();
        assert_eq!(
            headers,
            vec![
                ("port".to_string(), "80".to_string()),
                ("requestid".to_string(), "0".to_string()),
                ("streamtype".to_string(), "data".to_string()),
            ]
        );
    }

    #[test]
    fn inflates_dynamic_huffman_blocks() {
        let compressed = hex(
            "78f9e3c6a7c22495011284300803c79ff401e7a3028d7ce1eef7b7a91d070b860498aa9ca32bafd3f7de3f4ee3f5610cae5659c63050bbd4b8239b90e43a37a9d6f4969ef222fae422c9535852580f5b9f040caebcca712c24ca63af3e9060e0f7660312d9a2a73cc1805dfc05261a38e1d24cea43a6a369e41655351405e506c5d75e3ad2bbf4b2d30afc4e5391647cf87a8bcceab7264275fa3bcceea98422a6dae14c8548fd010000ffff",
        );
        let alpha = b"aaaaaaabbbbccdeeeeeeeeefg ";
        let mut x: u64 = 1;
        let value: String = (0..300)
            .map(|_| {
                x = (x * 1_103_515_245 + 12345) % (1 << 31);
                alpha[((x >> 16) % alpha.len() as u64) as usize] as char
            })
            .collect();
        let raw = encode_header_block(&[("x-dyn", &value)]);
        assert_eq!(Inflater::new().inflate(&compressed).unwrap(), raw);
    }

    #[test]
    fn stored_blocks_round_trip_and_bad_input_is_refused() {
        let mut deflater = Deflater {
            header_written: false,
        };
        let mut inflater = Inflater::new();
        for headers in [vec![], vec![("streamtype", "stdout")], vec![("a", "b\0c")]] {
            let raw = encode_header_block(&headers);
            assert_eq!(inflater.inflate(&deflater.compress(&raw)).unwrap(), raw);
        }
        assert_eq!(
            Inflater::new().inflate(&[0x78, 0xbb, 0, 0, 0, 0]),
            Err(InflateError::Dictionary)
        );
        assert_eq!(Inflater::new().inflate(&[0x78]), Err(InflateError::Header));
        let mut truncated = Deflater {
            header_written: false,
        }
        .compress(b"abcdef");
        truncated.truncate(truncated.len() - 2);
        assert_eq!(
            Inflater::new().inflate(&truncated),
            Err(InflateError::Truncated)
        );
    }

    #[test]
    fn websocket_accept_key_matches_rfc_6455() {
        assert_eq!(
            websocket_accept("dGhlIHNhbXBsZSBub25jZQ=="),
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
    }

    #[tokio::test]
    async fn websocket_frames_round_trip() {
        // A masked client frame with a 16-bit length.
        let payload: Vec<u8> = (0..300u32).map(|i| i as u8).collect();
        let mask = [1u8, 2, 3, 4];
        let mut wire = vec![0x82, 0x80 | 126];
        wire.extend_from_slice(&(payload.len() as u16).to_be_bytes());
        wire.extend_from_slice(&mask);
        wire.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
        let mut r = wire.as_slice();
        let frame = read_ws_frame(&mut r).await.unwrap().unwrap();
        assert_eq!(
            frame,
            WsFrame {
                fin: true,
                opcode: OP_BINARY,
                payload: payload.clone()
            }
        );
        assert!(read_ws_frame(&mut r).await.unwrap().is_none());
        let encoded = encode_ws_frame(OP_BINARY, &payload);
        let frame = read_ws_frame(&mut encoded.as_slice())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(frame.payload, payload);
        // Control frames may not be fragmented or long.
        let mut bad = encode_ws_frame(OP_PING, &[0; 10]);
        bad[0] &= 0x7f;
        assert!(read_ws_frame(&mut bad.as_slice()).await.is_err());
    }

    #[test]
    fn commands_of_the_simulated_container() {
        let cmd = |c: &[&str]| Behaviour::of(&c.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        assert_eq!(
            cmd(&["echo", "hello", "world"]),
            Behaviour::Print("hello world\n".into())
        );
        assert_eq!(cmd(&["/bin/echo", "-n", "x"]), Behaviour::Print("x".into()));
        assert_eq!(cmd(&["false"]), Behaviour::Exit(1));
        assert_eq!(cmd(&["true"]), Behaviour::Exit(0));
        assert_eq!(cmd(&["sh", "-c", "exit 3"]), Behaviour::Exit(3));
        assert_eq!(cmd(&["exit", "300"]), Behaviour::Exit(44));
        assert_eq!(cmd(&["exit", "x"]), Behaviour::Exit(2));
        assert_eq!(
            cmd(&["/bin/bash", "-c", "echo hi there"]),
            Behaviour::Print("hi there\n".into())
        );
        assert_eq!(cmd(&["cat"]), Behaviour::Echo);
        assert_eq!(cmd(&["sh"]), Behaviour::Echo);
        assert_eq!(cmd(&[]), Behaviour::Echo);
    }

    #[test]
    fn exit_statuses_are_the_kubelets() {
        assert_eq!(
            exit_status(0, &[]).to_string(),
            r#"{"metadata":{},"status":"Success"}"#
        );
        let failed = exit_status(3, &["sh".into(), "-c".into(), "exit 3".into()]);
        assert_eq!(failed["reason"], "NonZeroExitCode");
        assert_eq!(
            failed["details"]["causes"][0],
            json!({"reason": "ExitCode", "message": "3"})
        );
        assert_eq!(
            failed["message"],
            "command terminated with non-zero exit code: error executing command [sh -c exit 3], exit code 3"
        );
    }

    #[test]
    fn params_keep_every_command_word() {
        let p = Params::parse(Some(
            "command=sh&command=-c&command=echo%20hi&container=c&stdin=true&stdout=true&tty=false",
        ));
        assert_eq!(p.command, vec!["sh", "-c", "echo hi"]);
        assert_eq!(p.container.as_deref(), Some("c"));
        assert!(p.stdin && p.stdout && !p.stderr && !p.tty);
    }

    #[test]
    fn container_choice_is_kube_apiservers() {
        let pod = json!({"spec": {
            "containers": [{"name": "a"}, {"name": "b"}],
            "initContainers": [{"name": "i"}],
        }});
        assert_eq!(choose_container(&pod, "p", Some("i")).unwrap(), "i");
        assert_eq!(
            choose_container(&pod, "p", None).unwrap_err().to_string(),
            "a container name must be specified for pod p, choose one of: [a b] or one of the init containers: [i]"
        );
        assert_eq!(
            choose_container(&pod, "p", Some("x"))
                .unwrap_err()
                .to_string(),
            "container x is not valid for pod p"
        );
        let one = json!({"spec": {"containers": [{"name": "c"}]}});
        assert_eq!(choose_container(&one, "p", Some("")).unwrap(), "c");
    }

    #[test]
    fn chunked_bodies_are_decoded() {
        assert_eq!(
            dechunk(b"5\r\nhello\r\n1;x=y\r\n!\r\n0\r\n\r\n").unwrap(),
            b"hello!"
        );
        assert_eq!(dechunk(b"5\r\nhel"), None);
    }

    #[test]
    fn relayed_request_heads_carry_only_the_handshake() {
        let mut headers = HeaderMap::new();
        headers.insert("connection", HeaderValue::from_static("Upgrade"));
        headers.insert("upgrade", HeaderValue::from_static("websocket"));
        headers.insert("sec-websocket-key", HeaderValue::from_static("k"));
        headers.insert("authorization", HeaderValue::from_static("Bearer tenant"));
        headers.insert("impersonate-user", HeaderValue::from_static("admin"));
        let url: axum::http::Uri = "https://10.0.0.1:6443".parse().unwrap();
        let head = request_head(
            &Method::GET,
            "/api/v1/namespaces/n/pods/p/exec?command=ls",
            &url,
            Some("Bearer syncer"),
            &headers,
        );
        assert!(head.starts_with(
            "GET /api/v1/namespaces/n/pods/p/exec?command=ls HTTP/1.1\r\nHost: 10.0.0.1:6443\r\n"
        ));
        assert!(head.contains("Authorization: Bearer syncer\r\n"));
        assert!(!head.contains("tenant") && !head.contains("impersonate"));
        assert!(head.contains("upgrade: websocket\r\n") && head.ends_with("\r\n\r\n"));
    }
}
