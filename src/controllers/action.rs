//! What a controller's pure reconcile core asks for. The controller runtime carries actions
//! out through the same API code path clients use (validation, defaulting, resourceVersion
//! preconditions), so every change is a normal replicated, watchable write.

use serde_json::Value;

/// Which kind an action addresses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Kind {
    /// API group ("" = core).
    pub group: &'static str,
    /// Version.
    pub version: &'static str,
    /// Plural.
    pub plural: &'static str,
}

impl Kind {
    /// A kind.
    pub const fn new(group: &'static str, version: &'static str, plural: &'static str) -> Kind {
        Kind {
            group,
            version,
            plural,
        }
    }
}

/// core/v1 pods.
pub const PODS: Kind = Kind::new("", "v1", "pods");
/// apps/v1 replicasets.
pub const REPLICA_SETS: Kind = Kind::new("apps", "v1", "replicasets");
/// apps/v1 deployments.
pub const DEPLOYMENTS: Kind = Kind::new("apps", "v1", "deployments");
/// batch/v1 jobs.
pub const JOBS: Kind = Kind::new("batch", "v1", "jobs");
/// batch/v1 cronjobs.
pub const CRON_JOBS: Kind = Kind::new("batch", "v1", "cronjobs");
/// core/v1 services.
pub const SERVICES: Kind = Kind::new("", "v1", "services");
/// core/v1 endpoints.
pub const ENDPOINTS: Kind = Kind::new("", "v1", "endpoints");
/// discovery.k8s.io/v1 endpointslices.
pub const ENDPOINT_SLICES: Kind = Kind::new("discovery.k8s.io", "v1", "endpointslices");
/// core/v1 nodes.
pub const NODES: Kind = Kind::new("", "v1", "nodes");
/// policy/v1 poddisruptionbudgets.
pub const PDBS_POLICY: Kind = Kind::new("policy", "v1", "poddisruptionbudgets");
/// core/v1 events.
pub const EVENTS: Kind = Kind::new("", "v1", "events");
/// apps/v1 statefulsets.
pub const STATEFUL_SETS: Kind = Kind::new("apps", "v1", "statefulsets");
/// apps/v1 daemonsets.
pub const DAEMON_SETS: Kind = Kind::new("apps", "v1", "daemonsets");
/// apps/v1 controllerrevisions.
pub const CONTROLLER_REVISIONS: Kind = Kind::new("apps", "v1", "controllerrevisions");
/// core/v1 persistentvolumeclaims.
pub const PVCS: Kind = Kind::new("", "v1", "persistentvolumeclaims");

/// One change a controller wants.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Create `object` (its `metadata.name` or `generateName` is set).
    Create {
        /// Kind.
        kind: Kind,
        /// Namespace ("" for cluster-scoped).
        namespace: String,
        /// The object.
        object: Value,
    },
    /// Replace the object with `object`; its `metadata.resourceVersion` is a precondition
    /// (a conflict makes the runtime re-read and reconcile again).
    Update {
        /// Kind.
        kind: Kind,
        /// Namespace.
        namespace: String,
        /// The full new object.
        object: Value,
    },
    /// Replace the object's `status` (the `status` subresource), with the same precondition.
    UpdateStatus {
        /// Kind.
        kind: Kind,
        /// Namespace.
        namespace: String,
        /// The full object carrying the new status.
        object: Value,
    },
    /// Delete, if the object still has `uid` (when given).
    Delete {
        /// Kind.
        kind: Kind,
        /// Namespace.
        namespace: String,
        /// Name.
        name: String,
        /// Precondition.
        uid: Option<String>,
        /// `Background`, `Foreground`, `Orphan` (None = the kind's default).
        propagation: Option<&'static str>,
    },
    /// Bind the pod to `node` (the `binding` subresource), if it still has `uid`.
    Bind {
        /// Namespace.
        namespace: String,
        /// Pod name.
        name: String,
        /// The node.
        node: String,
    },
    /// Delete at once (grace period 0): what a kubelet does once a pod's containers are
    /// gone, and what finishes a graceful deletion.
    DeleteNow {
        /// Kind.
        kind: Kind,
        /// Namespace.
        namespace: String,
        /// Name.
        name: String,
        /// Precondition.
        uid: Option<String>,
    },
    /// Record a core/v1 Event about `involved` (an object with apiVersion/kind/metadata).
    Event {
        /// The object the event is about.
        involved: Value,
        /// `Normal` or `Warning`.
        event_type: &'static str,
        /// CamelCase reason, e.g. `SuccessfulCreate`, `ScalingReplicaSet`.
        reason: String,
        /// Human message, as upstream words it.
        message: String,
        /// The reporting controller, e.g. `replicaset-controller`.
        source: &'static str,
    },
}

impl Action {
    /// An Event recorded by `source` about `involved`.
    pub fn event(
        source: &'static str,
        involved: &Value,
        event_type: &'static str,
        reason: &str,
        message: String,
    ) -> Action {
        Action::Event {
            involved: involved_object(involved),
            event_type,
            reason: reason.to_string(),
            message,
            source,
        }
    }
}

/// What an Event keeps of the object it is about (its `involvedObject`): apiVersion, kind and
/// identifying metadata, not a copy of the whole object.
pub fn involved_object(obj: &Value) -> Value {
    let meta = |key: &str| super::replicaset::meta(obj, key);
    serde_json::json!({
        "apiVersion": obj.get("apiVersion").cloned().unwrap_or(Value::Null),
        "kind": obj.get("kind").cloned().unwrap_or(Value::Null),
        "metadata": {
            "name": meta("name"),
            "namespace": meta("namespace"),
            "uid": meta("uid"),
            "resourceVersion": meta("resourceVersion"),
        }
    })
}

/// A `&'static str` for a name known only at run time (kinds added by CRDs). Each distinct
/// name is allocated once and kept for the life of the process, so the memory is bounded by
/// the number of distinct CRD names ever served.
pub fn intern(s: &str) -> &'static str {
    use std::collections::HashSet;
    use std::sync::{Mutex, OnceLock};
    static NAMES: OnceLock<Mutex<HashSet<&'static str>>> = OnceLock::new();
    let mut names = NAMES
        .get_or_init(|| Mutex::new(HashSet::new()))
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some(existing) = names.get(s) {
        return existing;
    }
    let leaked: &'static str = Box::leak(s.to_string().into_boxed_str());
    names.insert(leaked);
    leaked
}
