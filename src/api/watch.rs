//! Watch: a chunked stream of `{"type":…,"object":…}` events, each flushed as soon as it is
//! encoded (with any others already waiting).
//!
//! - `resourceVersion` ""/"0"/absent: synthetic ADDED events for the current state, then
//!   every change after it; N: every change after N, or an ERROR event with a 410 Expired
//!   Status when N is older than the event window.
//! - `sendInitialEvents=true` (with `resourceVersionMatch=NotOlderThan`): the initial state,
//!   then a BOOKMARK annotated `k8s.io/initial-events-end`.
//! - Label-selector transitions are sent as ADDED/DELETED, as kube-apiserver does.
//! - BOOKMARK events about once a minute when `allowWatchBookmarks=true`; the stream ends
//!   cleanly after `timeoutSeconds` (default: random 30–60 min).
//! - A watcher that falls behind the broadcast channel is ended; the client re-watches from
//!   its last revision.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde_json::{Value, json};
use tokio::sync::{broadcast, mpsc};

use super::error::ApiError;
use super::objects::{Ctx, Filter};
use super::request::{TableVersion, Wanted};
use super::table::{self, IncludeObject};
use crate::resources::ResourceDef;
use crate::store::{EventType, StoredObject, WatchEvent};

const BOOKMARK_EVERY: Duration = Duration::from_secs(60);
/// The most a chunk of the stream gathers from events already waiting (one event may be
/// larger: it is sent whole).
const COALESCE_BYTES: usize = 256 * 1024;

/// How events are encoded for this watcher.
#[derive(Clone, Copy)]
enum Encoding {
    Json,
    Table(TableVersion, IncludeObject),
    Partial,
}

struct Watcher {
    def: Arc<ResourceDef>,
    resource: String,
    namespace: Option<String>,
    filter: Filter,
    encoding: Encoding,
    bookmarks: bool,
    sent_columns: bool,
    last_revision: u64,
}

impl Watcher {
    fn encode(&mut self, kind: &str, obj: &StoredObject) -> Bytes {
        let object: Value = match self.encoding {
            Encoding::Json => {
                let mut out = Vec::with_capacity(obj.json.len() + 32);
                out.extend_from_slice(b"{\"type\":\"");
                out.extend_from_slice(kind.as_bytes());
                out.extend_from_slice(b"\",\"object\":");
                out.extend_from_slice(&self.def.served_json(&obj.json));
                out.extend_from_slice(b"}\n");
                return Bytes::from(out);
            }
            Encoding::Partial => table::partial_metadata(&obj.value()),
            Encoding::Table(version, include) => {
                let t = table::build_with_columns(
                    &self.def,
                    &[obj.value()],
                    json!({"resourceVersion": obj.resource_version.to_string()}),
                    version,
                    include,
                    !self.sent_columns,
                );
                self.sent_columns = true;
                t
            }
        };
        line(&json!({"type": kind, "object": object}))
    }

    fn bookmark(&self, revision: u64, initial_end: bool) -> Bytes {
        let mut meta = json!({"resourceVersion": revision.to_string()});
        if initial_end {
            meta["annotations"] = json!({"k8s.io/initial-events-end": "true"});
        }
        line(&json!({
            "type": "BOOKMARK",
            "object": {"kind": self.def.kind, "apiVersion": self.def.api_version(), "metadata": meta},
        }))
    }

    /// The event to send for a change, if any.
    fn translate(&self, ev: &WatchEvent) -> Option<&'static str> {
        if *ev.resource != *self.resource || ev.revision <= self.last_revision {
            return None;
        }
        if let Some(ns) = &self.namespace
            && ev.object.namespace != *ns
        {
            return None;
        }
        let now = self.filter.matches(&ev.object);
        match ev.kind {
            EventType::Added => now.then_some("ADDED"),
            EventType::Deleted => now.then_some("DELETED"),
            EventType::Modified => {
                let before = ev.prev.as_ref().map_or(now, |p| self.filter.matches(p));
                match (before, now) {
                    (true, true) => Some("MODIFIED"),
                    (false, true) => Some("ADDED"),
                    (true, false) => Some("DELETED"),
                    (false, false) => None,
                }
            }
        }
    }
}

/// `first` and the events already waiting behind it (up to [`COALESCE_BYTES`]) as one chunk:
/// a burst of changes (a Raft batch) goes out as one frame and one socket write instead of
/// one of each per event. Clients read the stream line by line, so where chunks end does not
/// matter to them.
fn coalesce(first: Bytes, rx: &mut mpsc::Receiver<Bytes>) -> Bytes {
    let Ok(second) = rx.try_recv() else {
        return first;
    };
    let mut out = bytes::BytesMut::with_capacity(first.len() + second.len());
    out.extend_from_slice(&first);
    out.extend_from_slice(&second);
    while out.len() < COALESCE_BYTES
        && let Ok(next) = rx.try_recv()
    {
        out.extend_from_slice(&next);
    }
    out.freeze()
}

fn line(v: &Value) -> Bytes {
    let mut out = serde_json::to_vec(v).unwrap_or_default();
    out.push(b'\n');
    Bytes::from(out)
}

fn expired_event(requested: u64, oldest: u64) -> Bytes {
    line(&json!({
        "type": "ERROR",
        "object": {
            "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": format!("too old resource version: {requested} ({oldest})"),
            "reason": "Expired", "code": 410,
        },
    }))
}

fn default_timeout() -> Duration {
    let r = uuid::Uuid::new_v4().as_bytes()[0] as u64;
    Duration::from_secs(1800 + r * 1800 / 255)
}

/// Serves a watch on the collection of `ctx` (in `namespace` if given).
pub async fn serve(ctx: &Ctx<'_>, namespace: Option<&str>) -> Result<Response, ApiError> {
    let filter = Filter::parse(ctx)?;
    let encoding = match ctx.wanted {
        Wanted::Table(v) => Encoding::Table(v, table::include_object(ctx.query)?),
        Wanted::PartialMetadata => Encoding::Partial,
        _ => Encoding::Json,
    };
    let timeout = match ctx.query.get("timeoutSeconds") {
        None | Some("") => default_timeout(),
        Some(t) => Duration::from_secs(
            t.parse::<u64>()
                .map_err(|_| ApiError::BadRequest(format!("invalid timeoutSeconds: {t:?}")))?,
        ),
    };
    let send_initial = match ctx.query.get("sendInitialEvents") {
        None | Some("") => None,
        Some("true") => Some(true),
        Some("false") => Some(false),
        Some(other) => {
            return Err(ApiError::BadRequest(format!(
                "invalid sendInitialEvents: {other:?}"
            )));
        }
    };
    if send_initial.is_some() && ctx.query.get("resourceVersionMatch") != Some("NotOlderThan") {
        return Err(ApiError::Invalid {
            kind: "ListOptions".into(),
            group: "meta.k8s.io".into(),
            name: String::new(),
            message: "ListOptions.meta.k8s.io \"\" is invalid: resourceVersionMatch: Forbidden: sendInitialEvents requires setting resourceVersionMatch to NotOlderThan".into(),
            causes: vec![],
        });
    }
    let rv = ctx.query.get("resourceVersion").unwrap_or("");
    let store = ctx.app.store.clone();
    let resource = ctx.def.storage_resource();
    let mut watcher = Watcher {
        def: ctx.def.clone(),
        resource: resource.clone(),
        namespace: namespace.map(str::to_string),
        filter,
        encoding,
        bookmarks: ctx.query.flag("allowWatchBookmarks"),
        sent_columns: false,
        last_revision: 0,
    };

    let (tx, rx) = mpsc::channel::<Bytes>(64);
    let mut initial: Vec<Arc<StoredObject>> = Vec::new();
    let mut too_old: Option<(u64, u64)> = None;
    let start_revision;
    let live;
    let mut replay = Vec::new();
    if rv.is_empty() || rv == "0" {
        if rv.is_empty() {
            ctx.read_barrier().await?;
        }
        let start = store
            .hub()
            .subscribe(None)
            .map_err(|_| ApiError::Internal("watch window refused a live subscription".into()))?;
        live = start.live;
        let page = store.list(&resource, namespace, None, 0, &|o| {
            watcher.filter.matches(o)
        });
        start_revision = page.revision;
        if send_initial != Some(false) {
            initial = page.items;
        }
    } else {
        let n: u64 = rv
            .parse()
            .map_err(|_| ApiError::BadRequest(format!("invalid resource version: {rv:?}")))?;
        if send_initial == Some(true) {
            let start = store.hub().subscribe(None).map_err(|_| {
                ApiError::Internal("watch window refused a live subscription".into())
            })?;
            live = start.live;
            let page = store.list(&resource, namespace, None, 0, &|o| {
                watcher.filter.matches(o)
            });
            start_revision = page.revision;
            initial = page.items;
        } else {
            match store.hub().subscribe(Some(n)) {
                Ok(start) => {
                    live = start.live;
                    replay = start.replay;
                    start_revision = n;
                }
                Err(e) => {
                    let (_, dead) = broadcast::channel(1);
                    live = dead;
                    start_revision = n;
                    too_old = Some((n, e.oldest));
                }
            }
        }
    }

    tokio::spawn(async move {
        let send = |b: Bytes| {
            let tx = tx.clone();
            async move { tx.send(b).await.is_ok() }
        };
        if let Some((n, oldest)) = too_old {
            let _ = send(expired_event(n, oldest)).await;
            return;
        }
        for obj in &initial {
            let b = watcher.encode("ADDED", obj);
            if !send(b).await {
                return;
            }
        }
        watcher.last_revision = start_revision;
        if send_initial == Some(true) && !send(watcher.bookmark(start_revision, true)).await {
            return;
        }
        for ev in &replay {
            if let Some(kind) = watcher.translate(ev) {
                let b = watcher.encode(kind, &ev.object);
                if !send(b).await {
                    return;
                }
            }
            watcher.last_revision = watcher.last_revision.max(ev.revision);
        }
        run_live(watcher, live, tx, timeout).await;
    });

    let stream = futures::stream::unfold(rx, |mut rx| async move {
        let first = rx.recv().await?;
        Some((
            Ok::<Bytes, std::convert::Infallible>(coalesce(first, &mut rx)),
            rx,
        ))
    });
    let mut resp = (StatusCode::OK, Body::from_stream(stream)).into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("no-cache, private"),
    );
    Ok(resp)
}

async fn run_live(
    mut watcher: Watcher,
    mut live: broadcast::Receiver<Arc<WatchEvent>>,
    tx: mpsc::Sender<Bytes>,
    timeout: Duration,
) {
    let deadline = tokio::time::sleep(timeout);
    tokio::pin!(deadline);
    let mut ticker =
        tokio::time::interval_at(tokio::time::Instant::now() + BOOKMARK_EVERY, BOOKMARK_EVERY);
    loop {
        tokio::select! {
            _ = &mut deadline => {
                if watcher.bookmarks {
                    let _ = tx.send(watcher.bookmark(watcher.last_revision, false)).await;
                }
                return;
            }
            _ = tx.closed() => return,
            _ = ticker.tick(), if watcher.bookmarks => {
                if tx.send(watcher.bookmark(watcher.last_revision, false)).await.is_err() {
                    return;
                }
            }
            ev = live.recv() => match ev {
                Ok(ev) => {
                    if let Some(kind) = watcher.translate(&ev) {
                        let b = watcher.encode(kind, &ev.object);
                        if tx.send(b).await.is_err() {
                            return;
                        }
                    }
                    watcher.last_revision = watcher.last_revision.max(ev.revision);
                }
                Err(broadcast::error::RecvError::Lagged(n)) => {
                    tracing::info!(skipped = n, resource = %watcher.resource, "watcher fell behind; ending its stream so it re-watches");
                    return;
                }
                Err(broadcast::error::RecvError::Closed) => return,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waiting_events_go_out_as_one_chunk_of_whole_lines() {
        let (tx, mut rx) = mpsc::channel::<Bytes>(8);
        // Nothing waiting: the event alone, as it was.
        let alone = coalesce(Bytes::from_static(b"{\"a\":1}\n"), &mut rx);
        assert_eq!(&alone[..], b"{\"a\":1}\n");
        for n in 2..=4 {
            tx.try_send(Bytes::from(format!("{{\"a\":{n}}}\n")))
                .unwrap();
        }
        let burst = coalesce(Bytes::from_static(b"{\"a\":1}\n"), &mut rx);
        let lines: Vec<&[u8]> = burst.split(|b| *b == b'\n').collect();
        assert_eq!(
            lines,
            [
                &b"{\"a\":1}"[..],
                b"{\"a\":2}",
                b"{\"a\":3}",
                b"{\"a\":4}",
                b""
            ]
        );
        assert!(rx.try_recv().is_err(), "every waiting event was taken");
    }

    #[test]
    fn a_chunk_stops_gathering_at_the_size_limit() {
        let (tx, mut rx) = mpsc::channel::<Bytes>(8);
        let big = Bytes::from(vec![b'x'; COALESCE_BYTES / 2]);
        for _ in 0..4 {
            tx.try_send(big.clone()).unwrap();
        }
        let first = coalesce(big.clone(), &mut rx);
        assert_eq!(
            first.len(),
            COALESCE_BYTES,
            "the first two halves fill a chunk"
        );
        let next = coalesce(rx.try_recv().unwrap(), &mut rx);
        assert_eq!(next.len(), COALESCE_BYTES, "the next chunk is as full");
        assert_eq!(
            rx.try_recv().unwrap().len(),
            COALESCE_BYTES / 2,
            "the last one waits"
        );
    }
}
