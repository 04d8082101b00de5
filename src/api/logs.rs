//! `GET pods/<name>/log`: the checks kube-apiserver makes before it asks the kubelet
//! (container choice, a container that has not started), then the log itself. In `vkube sim`
//! the simulated kubelet's generated lines are served here; in a virtual cluster the pod's
//! physical cluster serves them (relayed by its syncer).

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde_json::Value;

use crate::api::ApiState;
use crate::api::error::ApiError;
use crate::api::request::Query;
use crate::controllers::replicaset::meta;

/// How a log is asked for (`PodLogOptions`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogOptions {
    /// The container (required when the pod has more than one).
    pub container: String,
    /// Keep streaming.
    pub follow: bool,
    /// The last N lines only.
    pub tail: Option<usize>,
    /// Prefix each line with its RFC 3339 time.
    pub timestamps: bool,
    /// The previous instance of the container.
    pub previous: bool,
}

fn bad_request(message: String) -> ApiError {
    ApiError::BadRequest(message)
}

/// Checks the request against the pod the way kube-apiserver does and resolves the
/// container: the messages are upstream's.
pub fn options(pod: &Value, query: &Query) -> Result<LogOptions, ApiError> {
    let name = pod
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("");
    let names: Vec<&str> = pod
        .pointer("/spec/containers")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|c| c.get("name").and_then(Value::as_str))
        .collect();
    let init: Vec<&str> = pod
        .pointer("/spec/initContainers")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|c| c.get("name").and_then(Value::as_str))
        .collect();
    let container = match query.get("container").filter(|c| !c.is_empty()) {
        Some(c) => {
            if !names.contains(&c) && !init.contains(&c) {
                return Err(bad_request(format!(
                    "container {c} is not valid for pod {name}"
                )));
            }
            c.to_string()
        }
        None if names.len() == 1 => names[0].to_string(),
        None => {
            let mut msg = format!(
                "a container name must be specified for pod {name}, choose one of: [{}]",
                names.join(" ")
            );
            if !init.is_empty() {
                msg.push_str(&format!(
                    " or one of the init containers: [{}]",
                    init.join(" ")
                ));
            }
            return Err(bad_request(msg));
        }
    };
    let tail = match query.get("tailLines") {
        Some(t) => Some(t.parse::<i64>().ok().filter(|n| *n >= 0).ok_or_else(|| {
            bad_request(format!(
                "tailLines: Invalid value: {t}: must be greater than or equal to 0"
            ))
        })? as usize),
        None => None,
    };
    let opts = LogOptions {
        container,
        follow: query.flag("follow"),
        tail,
        timestamps: query.flag("timestamps"),
        previous: query.flag("previous"),
    };
    // A container that never started has no log.
    let status = pod
        .pointer("/status/containerStatuses")
        .and_then(Value::as_array)
        .into_iter()
        .chain(
            pod.pointer("/status/initContainerStatuses")
                .and_then(Value::as_array),
        )
        .flatten()
        .find(|s| s.get("name").and_then(Value::as_str) == Some(opts.container.as_str()));
    let started = status.is_some_and(|s| {
        s.pointer("/state/running").is_some() || s.pointer("/state/terminated").is_some()
    });
    if opts.previous {
        return Err(bad_request(format!(
            "previous terminated container \"{}\" in pod \"{name}\" not found",
            opts.container
        )));
    }
    if !started {
        let reason = status
            .and_then(|s| s.pointer("/state/waiting/reason"))
            .and_then(Value::as_str)
            .unwrap_or("ContainerCreating");
        return Err(bad_request(format!(
            "container \"{}\" in pod \"{name}\" is waiting to start: {reason}",
            opts.container
        )));
    }
    Ok(opts)
}

/// The simulated kubelet's log of `pod` (re-read from the store while following, so the
/// stream ends when the pod stops running or goes away).
pub fn simulated(app: &Arc<ApiState>, pod: &Value, opts: LogOptions) -> Response {
    let now = jiff::Timestamp::now();
    let lines = crate::sim::log_lines(pod, &opts.container, now, opts.tail, opts.timestamps);
    let mut first = String::new();
    for l in &lines {
        first.push_str(l);
        first.push('\n');
    }
    if !opts.follow {
        return text(Body::from(first));
    }
    let ns = meta(pod, "namespace").to_string();
    let name = meta(pod, "name").to_string();
    let uid = meta(pod, "uid").to_string();
    let start = pod
        .pointer("/status/startTime")
        .and_then(Value::as_str)
        .and_then(|s| s.parse::<jiff::Timestamp>().ok())
        .unwrap_or(now);
    let next_index = usize::try_from((now.as_second() - start.as_second()).max(0) + 1).unwrap_or(0);
    let app = app.clone();
    let state = (Some(first), next_index, app, opts);
    let stream = futures::stream::unfold(state, move |(pending, i, app, opts)| {
        let (ns, name, uid) = (ns.clone(), name.clone(), uid.clone());
        async move {
            if let Some(p) = pending {
                return Some((Ok::<_, Infallible>(Bytes::from(p)), (None, i, app, opts)));
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
            let pod = app.store.get("pods", &ns, &name)?.value();
            let running = pod.pointer("/status/phase").and_then(Value::as_str) == Some("Running");
            if meta(&pod, "uid") != uid || !running {
                return None;
            }
            let line = crate::sim::log_line(
                &pod,
                &opts.container,
                i,
                jiff::Timestamp::now(),
                opts.timestamps,
            );
            Some((Ok(Bytes::from(line + "\n")), (None, i + 1, app, opts)))
        }
    });
    text(Body::from_stream(stream))
}

fn text(body: Body) -> Response {
    let mut resp = (StatusCode::OK, body).into_response();
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    resp
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn query(pairs: &[(&str, &str)]) -> Query {
        let s: String = pairs
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("&");
        Query::parse(Some(&s))
    }

    fn pod(running: bool) -> Value {
        let state = if running {
            json!({"running": {"startedAt": "2026-01-01T00:00:00Z"}})
        } else {
            json!({"waiting": {"reason": "ContainerCreating"}})
        };
        json!({"metadata": {"name": "web"},
               "spec": {"containers": [{"name": "a"}, {"name": "b"}], "initContainers": [{"name": "i"}]},
               "status": {"containerStatuses": [{"name": "a", "state": state}, {"name": "b", "state": state}]}})
    }

    #[test]
    fn container_choice_and_upstream_messages() {
        let err = options(&pod(true), &query(&[])).unwrap_err();
        assert_eq!(
            err.to_string(),
            "a container name must be specified for pod web, choose one of: [a b] or one of the init containers: [i]"
        );
        let err = options(&pod(true), &query(&[("container", "zz")])).unwrap_err();
        assert_eq!(err.to_string(), "container zz is not valid for pod web");
        let err = options(&pod(false), &query(&[("container", "a")])).unwrap_err();
        assert_eq!(
            err.to_string(),
            "container \"a\" in pod \"web\" is waiting to start: ContainerCreating"
        );
        let ok = options(
            &pod(true),
            &query(&[("container", "b"), ("follow", "true"), ("tailLines", "3")]),
        )
        .unwrap();
        assert_eq!(ok.container, "b");
        assert!(ok.follow);
        assert_eq!(ok.tail, Some(3));
        assert!(
            options(
                &pod(true),
                &query(&[("container", "a"), ("tailLines", "-1")])
            )
            .is_err()
        );
    }
}
