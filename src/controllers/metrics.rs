//! What the controllers are doing, as Prometheus text at `/metrics`: per controller the
//! reconciles, the actions carried out, the failed reconciles (retried with backoff) and the
//! keys queued now.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use super::Queue;

#[derive(Default, Clone, Copy)]
struct Counters {
    reconciles: u64,
    actions: u64,
    failures: u64,
}

#[derive(Default)]
struct Registry {
    counters: BTreeMap<&'static str, Counters>,
    queues: BTreeMap<&'static str, Arc<Queue>>,
}

fn registry() -> &'static Mutex<Registry> {
    static R: OnceLock<Mutex<Registry>> = OnceLock::new();
    R.get_or_init(Mutex::default)
}

/// Registers a controller's queue (its depth is reported).
pub fn register(controller: &'static str, queue: Arc<Queue>) {
    let mut r = registry().lock().unwrap_or_else(PoisonError::into_inner);
    r.queues.insert(controller, queue);
    r.counters.entry(controller).or_default();
}

/// Counts one reconcile of `controller` that carried out `actions` actions and failed or not.
pub fn record(controller: &'static str, actions: usize, failed: bool) {
    let mut r = registry().lock().unwrap_or_else(PoisonError::into_inner);
    let c = r.counters.entry(controller).or_default();
    c.reconciles += 1;
    c.actions += actions as u64;
    c.failures += u64::from(failed);
}

/// The Prometheus text exposition.
pub fn render() -> String {
    let r = registry().lock().unwrap_or_else(PoisonError::into_inner);
    let mut out = String::new();
    type Family = (
        &'static str,
        &'static str,
        &'static str,
        fn(&Counters) -> u64,
    );
    let families: [Family; 3] = [
        (
            "vkube_controller_reconciles_total",
            "counter",
            "Reconciles run.",
            |c| c.reconciles,
        ),
        (
            "vkube_controller_actions_total",
            "counter",
            "Writes and events carried out.",
            |c| c.actions,
        ),
        (
            "vkube_controller_reconcile_failures_total",
            "counter",
            "Reconciles that failed and were retried.",
            |c| c.failures,
        ),
    ];
    for (name, kind, help, get) in families {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
        for (controller, c) in &r.counters {
            let _ = writeln!(out, "{name}{{controller=\"{controller}\"}} {}", get(c));
        }
    }
    let name = "vkube_controller_queue_depth";
    let _ = writeln!(
        out,
        "# HELP {name} Keys waiting to be reconciled.\n# TYPE {name} gauge"
    );
    for (controller, q) in &r.queues {
        let _ = writeln!(out, "{name}{{controller=\"{controller}\"}} {}", q.len());
    }
    out
}
