//! Field-manager bench: the cost of recording one write in `metadata.managedFields`
//! (`vkube::api::apply::record_update`), the step every create and status write of the API
//! server takes. A pod goes through what a rollout does to it: created by the ReplicaSet
//! controller, bound by the scheduler (a binding is written straight to storage, as
//! kube-apiserver's is: it records nothing), two status writes of a kubelet and one of a
//! second manager (vkube's syncer). Prints the median and p99 per step over the rounds.
//!
//! `cargo bench --bench fields [-- --pods N --rounds N]` (1,000 pods, 7 rounds).

use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};
use vkube::api::apply::{BuiltinSchema, Scope, record_update};
use vkube::resources::schema::message_for_kind;

// The allocator vkube's binary uses: these writes are mostly allocation.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// A pod as the ReplicaSet controller creates it, after defaulting (3 containers' worth of
/// fields, like a typical workload).
fn pod(i: usize) -> Value {
    let container = |name: &str| {
        json!({"name": name, "image": "nginx", "imagePullPolicy": "Always",
            "ports": [{"containerPort": 80, "protocol": "TCP"}],
            "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}],
            "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}},
            "terminationMessagePath": "/dev/termination-log", "terminationMessagePolicy": "File",
            "volumeMounts": [{"mountPath": "/var/run/secrets/kubernetes.io/serviceaccount",
                "name": "kube-api-access-x", "readOnly": true}]})
    };
    json!({"apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": format!("web-{i}"), "namespace": "default", "uid": format!("u-{i}"),
            "generateName": "web-", "labels": {"app": "web", "pod-template-hash": "5d8f"},
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web-5d8f",
                "uid": "rs", "controller": true, "blockOwnerDeletion": true}]},
        "spec": {"containers": [container("a"), container("b"), container("c")],
            "dnsPolicy": "ClusterFirst", "enableServiceLinks": true, "preemptionPolicy": "PreemptLowerPriority",
            "priority": 0, "restartPolicy": "Always", "schedulerName": "default-scheduler",
            "securityContext": {}, "serviceAccountName": "default", "terminationGracePeriodSeconds": 30,
            "tolerations": [{"effect": "NoExecute", "key": "node.kubernetes.io/not-ready",
                "operator": "Exists", "tolerationSeconds": 300}],
            "volumes": [{"name": "kube-api-access-x", "projected": {"defaultMode": 420,
                "sources": [{"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}}]}}]}})
}

fn status(phase: &str, ready: &str) -> Value {
    let cs = |name: &str| {
        json!({"name": name, "image": "nginx", "imageID": "sim://nginx", "ready": ready == "True",
            "restartCount": 0, "started": true, "state": {"running": {"startedAt": "2026-01-01T00:00:00Z"}}})
    };
    json!({"phase": phase, "hostIP": "10.0.0.1", "podIP": "10.244.0.7", "qosClass": "Burstable",
        "startTime": "2026-01-01T00:00:00Z",
        "conditions": [{"type": "Ready", "status": ready, "lastTransitionTime": "2026-01-01T00:00:00Z"},
            {"type": "PodScheduled", "status": "True", "lastTransitionTime": "2026-01-01T00:00:00Z"}],
        "containerStatuses": [cs("a"), cs("b"), cs("c")]})
}

/// A write after the create: its manager, subresource and change.
type Write = (&'static str, Option<&'static str>, fn(&mut Value));

const STEPS: [&str; 4] = ["create", "status 1", "status 2", "status (2nd manager)"];

/// Records the four writes of one pod; the time each took.
fn one_pod(i: usize, schema: BuiltinSchema) -> [Duration; 4] {
    let scope = |manager, subresource| Scope {
        manager,
        subresource,
        status_subresource: true,
        now: "2026-01-01T00:00:00Z",
    };
    let mut took = [Duration::ZERO; 4];
    let mut obj = pod(i);
    let start = Instant::now();
    record_update(
        None,
        &mut obj,
        schema,
        &scope("kube-controller-manager", None),
    );
    took[0] = start.elapsed();
    obj["spec"]["nodeName"] = json!("node-1");
    let writes: [Write; 3] = [
        ("kubelet", Some("status"), |o| {
            o["status"] = status("Pending", "False")
        }),
        ("kubelet", Some("status"), |o| {
            o["status"] = status("Running", "True")
        }),
        ("vkube-syncer", Some("status"), |o| {
            o["status"]["podIP"] = json!("10.244.0.8")
        }),
    ];
    for (n, (manager, sub, change)) in writes.iter().enumerate() {
        let mut new = obj.clone();
        change(&mut new);
        let start = Instant::now();
        record_update(Some(&obj), &mut new, schema, &scope(manager, *sub));
        took[n + 1] = start.elapsed();
        obj = new;
    }
    took
}

fn main() -> Result<()> {
    let (mut pods, mut rounds) = (1000usize, 7usize);
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut val = || args.next().with_context(|| format!("{a} needs a value"));
        match a.as_str() {
            "--pods" => pods = val()?.parse()?,
            "--rounds" => rounds = val()?.parse()?,
            "--bench" => {}
            other => bail!("unknown option {other}"),
        }
    }
    if pods == 0 || rounds == 0 {
        bail!("--pods and --rounds must be positive");
    }
    let message = message_for_kind("", "v1", "Pod").context("the Pod schema")?;
    let schema = BuiltinSchema::for_kind(message);
    // Per step: the mean of each round, and every single write.
    let mut means: Vec<Vec<Duration>> = vec![Vec::new(); STEPS.len()];
    let mut all: Vec<Vec<Duration>> = vec![Vec::new(); STEPS.len()];
    for _ in 0..rounds {
        let mut sums = [Duration::ZERO; STEPS.len()];
        for i in 0..pods {
            for (s, d) in one_pod(i, schema).into_iter().enumerate() {
                sums[s] += d;
                all[s].push(d);
            }
        }
        for (s, sum) in sums.iter().enumerate() {
            means[s].push(*sum / pods as u32);
        }
    }
    println!(
        "managedFields bench: {pods} pods x {rounds} rounds (median of round means; p99 of all)"
    );
    println!(
        "{:<22} {:>12} {:>12} {:>12}",
        "write", "median us", "p99 us", "writes/s"
    );
    for (s, step) in STEPS.iter().enumerate() {
        means[s].sort();
        all[s].sort();
        let median = means[s][rounds / 2];
        let p99 = all[s][(all[s].len() * 99 / 100).min(all[s].len() - 1)];
        println!(
            "{:<22} {:>12.1} {:>12.1} {:>12.0}",
            step,
            median.as_secs_f64() * 1e6,
            p99.as_secs_f64() * 1e6,
            1.0 / median.as_secs_f64()
        );
    }
    Ok(())
}
