//! Server-side `Table` printing: the column definitions and row cells that
//! kube-apiserver 1.33 returns for `Accept: application/json;as=Table;...`, so
//! that `kubectl get` (and `-o wide`) prints what it prints against a real
//! cluster.
//!
//! The rules (column names, types, priorities, and how each cell is derived
//! from an object) follow upstream's `pkg/printers/internalversion` printers
//! and `k8s.io/apimachinery/pkg/util/duration.HumanDuration`. This is an
//! independent implementation that works directly on the JSON (external, v1)
//! form of objects, so the v1 field names are read and the small
//! v1→internal conversions that matter for printing are reproduced
//! (`podIPs`/`podIP`, `clusterIPs`/`clusterIP`, `stringData`, events.k8s.io
//! field names, ...).
//!
//! Like kube-apiserver, every row carries *all* columns, including the
//! priority-1 ones: the server always generates wide rows and kubectl hides
//! the `priority > 0` columns unless `-o wide` is given.
//!
//! # API
//!
//! - [`columns`]`(group, resource)`: the column definitions. Resources without
//!   a printer get [`DEFAULT_COLUMNS`] (`Name`, `Created At`), which is what
//!   kube-apiserver's default table convertor uses for built-ins without a
//!   printer (roles, clusterroles, limitranges, ...).
//! - [`cells`]`(group, resource, object, now)`: the cells of one row, in the
//!   order of `columns`.
//! - [`row_conditions`]: the optional `conditions` of a row (pods only).
//! - [`has_printer`]: whether a resource has a dedicated printer.
//! - [`CRD_DEFAULT_COLUMNS`] / [`crd_default_cells`]: what the apiextensions
//!   server returns for custom resources without `additionalPrinterColumns`
//!   (`Name`, `Age` of type `date`), and [`custom_column_cell`] to convert a
//!   value found by an `additionalPrinterColumns` JSONPath into a cell.
//! - [`human_age`] / [`human_duration`]: `translateTimestampSince` and
//!   `duration.HumanDuration`.
//! - [`ColumnDefinition::to_json`]: the `meta.k8s.io/v1` `TableColumnDefinition`
//!   JSON form.
//!
//! Where kube-apiserver would always have defaulted a field before printing
//! (for example `spec.replicas`, `spec.type` of a Service, a pod's `phase`),
//! a missing field is printed as its default value, so objects that were
//! stored without server-side defaulting still print like a real cluster.

use jiff::Timestamp;
use serde_json::{Map, Value, json};

/// One `meta.k8s.io/v1` `TableColumnDefinition`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ColumnDefinition {
    /// Human-readable column name (kubectl upper-cases it for the header).
    pub name: &'static str,
    /// OpenAPI type: `"string"`, `"integer"`, `"boolean"`, `"date"`, ...
    pub type_: &'static str,
    /// OpenAPI format: `"name"` for the object's name column, else `""`.
    pub format: &'static str,
    /// What the column shows (not printed by kubectl).
    pub description: &'static str,
    /// 0 for default columns, 1 for columns shown only with `-o wide`.
    pub priority: i32,
}

impl ColumnDefinition {
    /// The JSON form, as found in `Table.columnDefinitions`.
    pub fn to_json(&self) -> Value {
        json!({
            "name": self.name,
            "type": self.type_,
            "format": self.format,
            "description": self.description,
            "priority": self.priority,
        })
    }
}

const fn col(
    name: &'static str,
    type_: &'static str,
    description: &'static str,
) -> ColumnDefinition {
    ColumnDefinition {
        name,
        type_,
        format: "",
        description,
        priority: 0,
    }
}

const fn wide(
    name: &'static str,
    type_: &'static str,
    description: &'static str,
) -> ColumnDefinition {
    ColumnDefinition {
        name,
        type_,
        format: "",
        description,
        priority: 1,
    }
}

const NAME_DESC: &str = "Name must be unique within a namespace; it is the client-chosen identifier of the object, used for idempotent creation and for addressing it. Cannot be updated.";
const CREATION_DESC: &str = "CreationTimestamp is the server time at which the object was created, in RFC 3339 form, UTC. Set by the system; read-only.";

const NAME: ColumnDefinition = ColumnDefinition {
    name: "Name",
    type_: "string",
    format: "name",
    description: NAME_DESC,
    priority: 0,
};
const AGE: ColumnDefinition = col("Age", "string", CREATION_DESC);
const CONTAINERS: ColumnDefinition = wide(
    "Containers",
    "string",
    "Names of each container in the template.",
);
const IMAGES: ColumnDefinition = wide(
    "Images",
    "string",
    "Images referenced by each container in the template.",
);

/// The columns of kube-apiserver's default table convertor, used for built-in
/// resources without a dedicated printer (and for unknown resources).
/// The second cell is the RFC 3339 creation timestamp, not an age.
pub const DEFAULT_COLUMNS: &[ColumnDefinition] = &[NAME, col("Created At", "date", CREATION_DESC)];

/// The columns the apiextensions server uses for a custom resource whose
/// version declares no `additionalPrinterColumns`.
pub const CRD_DEFAULT_COLUMNS: &[ColumnDefinition] = &[NAME, col("Age", "date", CREATION_DESC)];

const POD_COLUMNS: &[ColumnDefinition] = &[
    NAME,
    col(
        "Ready",
        "string",
        "The aggregate readiness state of this pod for accepting traffic.",
    ),
    col(
        "Status",
        "string",
        "The aggregate status of the containers in this pod.",
    ),
    col(
        "Restarts",
        "string",
        "The number of times the containers in this pod have been restarted, and when the last one restarted.",
    ),
    AGE,
    wide(
        "IP",
        "string",
        "The IP address allocated to the pod; routable at least within the cluster.",
    ),
    wide("Node", "string", "The node the pod is scheduled onto."),
    wide(
        "Nominated Node",
        "string",
        "The node on which the scheduler expects to place this pod once preemption of other pods completes.",
    ),
    wide(
        "Readiness Gates",
        "string",
        "Extra pod conditions that must be true for the pod to be considered ready.",
    ),
];

const PDB_COLUMNS: &[ColumnDefinition] = &[
    NAME,
    col(
        "Min Available",
        "string",
        "The minimum number of pods that must be available.",
    ),
    col(
        "Max Unavailable",
        "string",
        "The maximum number of pods that may be unavailable.",
    ),
    col(
        "Allowed Disruptions",
        "integer",
        "Calculated number of pods that may be disrupted at this time.",
    ),
    AGE,
];

const RC_COLUMNS: &[ColumnDefinition] = &[
    NAME,
    col("Desired", "integer", "The number of desired replicas."),
    col(
        "Current",
        "integer",
        "The most recently observed number of replicas.",
    ),
    col("Ready", "integer", "The number of ready replicas."),
    AGE,
    CONTAINERS,
    IMAGES,
    wide(
        "Selector",
        "string",
        "Label keys and values that pods must match to be controlled.",
    ),
];

const RS_COLUMNS: &[ColumnDefinition] = &[
    NAME,
    col("Desired", "integer", "The number of desired replicas."),
    col(
        "Current",
        "integer",
        "The most recently observed number of replicas.",
    ),
    col("Ready", "integer", "The number of ready replicas."),
    AGE,
    CONTAINERS,
    IMAGES,
    wide(
        "Selector",
        "string",
        "A label query over pods that should match the replica count.",
    ),
];

const DS_COLUMNS: &[ColumnDefinition] = &[
    NAME,
    col(
        "Desired",
        "integer",
        "The total number of nodes that should be running the daemon pod.",
    ),
    col(
        "Current",
        "integer",
        "The number of nodes running at least one daemon pod that are supposed to run it.",
    ),
    col(
        "Ready",
        "integer",
        "The number of nodes that should run the daemon pod and have it ready.",
    ),
    col(
        "Up-to-date",
        "integer",
        "The number of nodes running the updated daemon pod.",
    ),
    col(
        "Available",
        "integer",
        "The number of nodes that should run the daemon pod and have it available.",
    ),
    col(
        "Node Selector",
        "string",
        "The node labels the pod template requires.",
    ),
    AGE,
    CONTAINERS,
    IMAGES,
    wide(
        "Selector",
        "string",
        "A label query over pods that are managed by the daemon set.",
    ),
];

const JOB_COLUMNS: &[ColumnDefinition] = &[
    NAME,
    col("Status", "string", "Status of the job."),
    col(
        "Completions",
        "string",
        "The number of pods which reached phase Succeeded.",
    ),
    col("Duration", "string", "Time required to complete the job."),
    AGE,
    CONTAINERS,
    IMAGES,
    wide(
        "Selector",
        "string",
        "A label query over pods that should match the pod count.",
    ),
];

const CRONJOB_COLUMNS: &[ColumnDefinition] = &[
    NAME,
    col("Schedule", "string", "The schedule in Cron format."),
    col(
        "Timezone",
        "string",
        "The time zone name for the given schedule.",
    ),
    col(
        "Suspend",
        "boolean",
        "Whether subsequent executions are suspended.",
    ),
    col("Active", "integer", "The number of currently running jobs."),
    col(
        "Last Schedule",
        "string",
        "When the job was last successfully scheduled.",
    ),
    AGE,
    CONTAINERS,
    IMAGES,
    wide(
        "Selector",
        "string",
        "A label query over pods that should match the pod count.",
    ),
];

const SERVICE_COLUMNS: &[ColumnDefinition] = &[
    NAME,
    col(
        "Type",
        "string",
        "How the Service is exposed: ClusterIP, NodePort, LoadBalancer or ExternalName.",
    ),
    col(
        "Cluster-IP",
        "string",
        "The IP address of the service, usually assigned by the control plane.",
    ),
    col(
        "External-IP",
        "string",
        "IP addresses or hostnames through which the service is reachable from outside.",
    ),
    col(
        "Port(s)",
        "string",
        "The ports that are exposed by this service.",
    ),
    AGE,
    wide(
        "Selector",
        "string",
        "Route service traffic to pods with label keys and values matching this selector.",
    ),
];

const INGRESS_COLUMNS: &[ColumnDefinition] = &[
    NAME,
    col(
        "Class",
        "string",
        "The name of the IngressClass resource that should be used for additional configuration",
    ),
    col(
        "Hosts",
        "string",
        "Hosts that incoming requests are matched against before the ingress rule",
    ),
    col(
        "Address",
        "string",
        "Address is a list containing ingress points for the load-balancer",
    ),
    col("Ports", "string", "Ports of TLS configurations that open"),
    AGE,
];

const INGRESSCLASS_COLUMNS: &[ColumnDefinition] = &[
    NAME,
    col(
        "Controller",
        "string",
        "Controller that is responsible for handling this class",
    ),
    col(
        "Parameters",
        "string",
        "A reference to a resource with additional parameters",
    ),
    AGE,
];

const STS_COLUMNS: &[ColumnDefinition] = &[
    NAME,
    col("Ready", "string", "Number of the pod with ready state"),
    AGE,
    CONTAINERS,
    IMAGES,
];

const ENDPOINTS_COLUMNS: &[ColumnDefinition] = &[
    NAME,
    col(
        "Endpoints",
        "string",
        "The sets of addresses and ports that comprise the service.",
    ),
    AGE,
];

const NODE_COLUMNS: &[ColumnDefinition] = &[
    NAME,
    col("Status", "string", "The status of the node"),
    col("Roles", "string", "The roles of the node"),
    AGE,
    col("Version", "string", "Kubelet version reported by the node."),
    wide("Internal-IP", "string", "Addresses reachable to the node."),
    wide("External-IP", "string", "Addresses reachable to the node."),
    wide(
        "OS-Image",
        "string",
        "OS image reported by the node from /etc/os-release.",
    ),
    wide(
        "Kernel-Version",
        "string",
        "Kernel version reported by the node from 'uname -r'.",
    ),
    wide(
        "Container-Runtime",
        "string",
        "Container runtime version reported by the node.",
    ),
];

const EVENT_COLUMNS: &[ColumnDefinition] = &[
    col(
        "Last Seen",
        "string",
        "The time at which the most recent occurrence of this event was recorded.",
    ),
    col("Type", "string", "Type of this event (Normal, Warning)."),
    col(
        "Reason",
        "string",
        "Short, machine-understandable reason for the transition into the object's current status.",
    ),
    col("Object", "string", "The object that this event is about."),
    wide(
        "Subobject",
        "string",
        "The part of the object the event is about, e.g. a container.",
    ),
    wide("Source", "string", "The component reporting this event."),
    col(
        "Message",
        "string",
        "A human-readable description of the status of this operation.",
    ),
    wide(
        "First Seen",
        "string",
        "The time at which the event was first recorded.",
    ),
    wide(
        "Count",
        "string",
        "The number of times this event has occurred.",
    ),
    ColumnDefinition {
        name: "Name",
        type_: "string",
        format: "name",
        description: NAME_DESC,
        priority: 1,
    },
];

const NAMESPACE_COLUMNS: &[ColumnDefinition] = &[
    NAME,
    col("Status", "string", "The status of the namespace"),
    AGE,
];

const SECRET_COLUMNS: &[ColumnDefinition] = &[
    NAME,
    col(
        "Type",
        "string",
        "Used to facilitate programmatic handling of secret data.",
    ),
    col(
        "Data",
        "string",
        "The number of data entries of the secret.",
    ),
    AGE,
];

const SA_COLUMNS: &[ColumnDefinition] = &[
    NAME,
    col(
        "Secrets",
        "string",
        "The secrets that pods running with this service account may use.",
    ),
    AGE,
];

const PV_COLUMNS: &[ColumnDefinition] = &[
    NAME,
    col(
        "Capacity",
        "string",
        "The persistent volume's resources and capacity.",
    ),
    col(
        "Access Modes",
        "string",
        "All the ways the volume can be mounted.",
    ),
    col(
        "Reclaim Policy",
        "string",
        "What happens to the volume when released from its claim.",
    ),
    col("Status", "string", "The phase of the volume."),
    col(
        "Claim",
        "string",
        "Part of a bi-directional binding between PersistentVolume and PersistentVolumeClaim.",
    ),
    col("StorageClass", "string", "StorageClass of the pv"),
    col(
        "VolumeAttributesClass",
        "string",
        "VolumeAttributesClass of the pv",
    ),
    col(
        "Reason",
        "string",
        "A brief, human-readable message indicating why the volume is in this phase.",
    ),
    AGE,
    wide(
        "VolumeMode",
        "string",
        "Whether the volume is used with a formatted filesystem or as a raw block device.",
    ),
];

const PVC_COLUMNS: &[ColumnDefinition] = &[
    NAME,
    col("Status", "string", "The current phase of the claim."),
    col(
        "Volume",
        "string",
        "The binding reference to the PersistentVolume backing this claim.",
    ),
    col(
        "Capacity",
        "string",
        "The actual resources of the underlying volume.",
    ),
    col(
        "Access Modes",
        "string",
        "The access modes the volume backing the claim actually has.",
    ),
    col("StorageClass", "string", "StorageClass of the pvc"),
    col(
        "VolumeAttributesClass",
        "string",
        "VolumeAttributesClass of the pvc",
    ),
    AGE,
    wide(
        "VolumeMode",
        "string",
        "What type of volume is required by the claim.",
    ),
];

const DEPLOYMENT_COLUMNS: &[ColumnDefinition] = &[
    NAME,
    col("Ready", "string", "Number of the pod with ready state"),
    col(
        "Up-to-date",
        "string",
        "Total number of non-terminated pods targeted by this deployment that have the desired template spec.",
    ),
    col(
        "Available",
        "string",
        "Total number of available pods targeted by this deployment.",
    ),
    AGE,
    CONTAINERS,
    IMAGES,
    wide("Selector", "string", "Label selector for pods."),
];

const HPA_COLUMNS: &[ColumnDefinition] = &[
    NAME,
    col("Reference", "string", "The target resource to scale."),
    col(
        "Targets",
        "string",
        "The metrics used to calculate the desired replica count, current/target.",
    ),
    col(
        "MinPods",
        "string",
        "The lower limit for the number of replicas.",
    ),
    col(
        "MaxPods",
        "string",
        "The upper limit for the number of replicas.",
    ),
    col(
        "Replicas",
        "string",
        "The current number of replicas of pods managed by this autoscaler.",
    ),
    AGE,
];

const CONFIGMAP_COLUMNS: &[ColumnDefinition] = &[
    NAME,
    col(
        "Data",
        "string",
        "The number of data and binaryData entries.",
    ),
    AGE,
];

const NETPOL_COLUMNS: &[ColumnDefinition] = &[
    NAME,
    col(
        "Pod-Selector",
        "string",
        "Selects the pods to which this policy applies.",
    ),
    AGE,
];

const ROLEBINDING_COLUMNS: &[ColumnDefinition] = &[
    NAME,
    col(
        "Role",
        "string",
        "The Role or ClusterRole the binding refers to.",
    ),
    AGE,
    wide("Users", "string", "Users in the roleBinding"),
    wide("Groups", "string", "Groups in the roleBinding"),
    wide(
        "ServiceAccounts",
        "string",
        "ServiceAccounts in the roleBinding",
    ),
];

const CLUSTERROLEBINDING_COLUMNS: &[ColumnDefinition] = &[
    NAME,
    col("Role", "string", "The ClusterRole the binding refers to."),
    AGE,
    wide("Users", "string", "Users in the clusterRoleBinding"),
    wide("Groups", "string", "Groups in the clusterRoleBinding"),
    wide(
        "ServiceAccounts",
        "string",
        "ServiceAccounts in the clusterRoleBinding",
    ),
];

const LEASE_COLUMNS: &[ColumnDefinition] = &[
    NAME,
    col(
        "Holder",
        "string",
        "The identity of the current holder of the lease.",
    ),
    AGE,
];

const STORAGECLASS_COLUMNS: &[ColumnDefinition] = &[
    NAME,
    col("Provisioner", "string", "The type of the provisioner."),
    col(
        "ReclaimPolicy",
        "string",
        "The reclaim policy of dynamically provisioned volumes.",
    ),
    col(
        "VolumeBindingMode",
        "string",
        "How PersistentVolumeClaims should be provisioned and bound.",
    ),
    col(
        "AllowVolumeExpansion",
        "string",
        "Whether the storage class allows volume expansion.",
    ),
    AGE,
];

const CONTROLLERREVISION_COLUMNS: &[ColumnDefinition] = &[
    NAME,
    col("Controller", "string", "Controller of the object"),
    col(
        "Revision",
        "string",
        "The revision of the state represented by the data.",
    ),
    AGE,
];

const RESOURCEQUOTA_COLUMNS: &[ColumnDefinition] = &[
    NAME,
    col(
        "Request",
        "string",
        "Request represents a minimum amount of cpu/memory that a container may consume.",
    ),
    col(
        "Limit",
        "string",
        "Limits control the maximum amount of cpu/memory that a container may use independent of contention on the node.",
    ),
    AGE,
];

const PRIORITYCLASS_COLUMNS: &[ColumnDefinition] = &[
    NAME,
    col(
        "Value",
        "integer",
        "The priority value pods get when they name this class.",
    ),
    col(
        "Global-Default",
        "boolean",
        "Whether this class is the default for pods without a priority class.",
    ),
    AGE,
    // Upstream declares this column with priority 0 (shown without -o wide).
    col(
        "PreemptionPolicy",
        "string",
        "The policy for preempting pods with lower priority.",
    ),
];

const ENDPOINTSLICE_COLUMNS: &[ColumnDefinition] = &[
    NAME,
    col(
        "AddressType",
        "string",
        "The type of address carried by this slice.",
    ),
    col(
        "Ports",
        "string",
        "The network ports exposed by each endpoint of this slice.",
    ),
    col("Endpoints", "string", "The unique endpoints in this slice."),
    AGE,
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Printer {
    Pod,
    Pdb,
    ReplicationController,
    ReplicaSet,
    DaemonSet,
    Job,
    CronJob,
    Service,
    Ingress,
    IngressClass,
    StatefulSet,
    Endpoints,
    Node,
    Event,
    Namespace,
    Secret,
    ServiceAccount,
    PersistentVolume,
    PersistentVolumeClaim,
    Deployment,
    Hpa,
    ConfigMap,
    NetworkPolicy,
    RoleBinding,
    ClusterRoleBinding,
    Lease,
    StorageClass,
    ControllerRevision,
    ResourceQuota,
    PriorityClass,
    EndpointSlice,
}

fn printer_for(group: &str, resource: &str) -> Option<Printer> {
    use Printer as P;
    Some(match (group, resource) {
        ("", "pods") => P::Pod,
        ("", "replicationcontrollers") => P::ReplicationController,
        ("", "services") => P::Service,
        ("", "endpoints") => P::Endpoints,
        ("", "nodes") => P::Node,
        ("", "events") | ("events.k8s.io", "events") => P::Event,
        ("", "namespaces") => P::Namespace,
        ("", "secrets") => P::Secret,
        ("", "serviceaccounts") => P::ServiceAccount,
        ("", "persistentvolumes") => P::PersistentVolume,
        ("", "persistentvolumeclaims") => P::PersistentVolumeClaim,
        ("", "configmaps") => P::ConfigMap,
        ("", "resourcequotas") => P::ResourceQuota,
        ("apps", "replicasets") => P::ReplicaSet,
        ("apps", "daemonsets") => P::DaemonSet,
        ("apps", "statefulsets") => P::StatefulSet,
        ("apps", "deployments") => P::Deployment,
        ("apps", "controllerrevisions") => P::ControllerRevision,
        ("batch", "jobs") => P::Job,
        ("batch", "cronjobs") => P::CronJob,
        ("policy", "poddisruptionbudgets") => P::Pdb,
        ("networking.k8s.io", "ingresses") => P::Ingress,
        ("networking.k8s.io", "ingressclasses") => P::IngressClass,
        ("networking.k8s.io", "networkpolicies") => P::NetworkPolicy,
        ("autoscaling", "horizontalpodautoscalers") => P::Hpa,
        ("rbac.authorization.k8s.io", "rolebindings") => P::RoleBinding,
        ("rbac.authorization.k8s.io", "clusterrolebindings") => P::ClusterRoleBinding,
        ("coordination.k8s.io", "leases") => P::Lease,
        ("storage.k8s.io", "storageclasses") => P::StorageClass,
        ("scheduling.k8s.io", "priorityclasses") => P::PriorityClass,
        ("discovery.k8s.io", "endpointslices") => P::EndpointSlice,
        _ => return None,
    })
}

/// Whether `group`/`resource` has a dedicated printer. Resources without one
/// (e.g. roles, clusterroles, limitranges) use [`DEFAULT_COLUMNS`].
pub fn has_printer(group: &str, resource: &str) -> bool {
    printer_for(group, resource).is_some()
}

/// The columns for a resource (group `""` = core). Resources without a
/// printer get the default `Name` / `Created At` columns.
pub fn columns(group: &str, resource: &str) -> &'static [ColumnDefinition] {
    use Printer as P;
    let Some(p) = printer_for(group, resource) else {
        return DEFAULT_COLUMNS;
    };
    match p {
        P::Pod => POD_COLUMNS,
        P::Pdb => PDB_COLUMNS,
        P::ReplicationController => RC_COLUMNS,
        P::ReplicaSet => RS_COLUMNS,
        P::DaemonSet => DS_COLUMNS,
        P::Job => JOB_COLUMNS,
        P::CronJob => CRONJOB_COLUMNS,
        P::Service => SERVICE_COLUMNS,
        P::Ingress => INGRESS_COLUMNS,
        P::IngressClass => INGRESSCLASS_COLUMNS,
        P::StatefulSet => STS_COLUMNS,
        P::Endpoints => ENDPOINTS_COLUMNS,
        P::Node => NODE_COLUMNS,
        P::Event => EVENT_COLUMNS,
        P::Namespace => NAMESPACE_COLUMNS,
        P::Secret => SECRET_COLUMNS,
        P::ServiceAccount => SA_COLUMNS,
        P::PersistentVolume => PV_COLUMNS,
        P::PersistentVolumeClaim => PVC_COLUMNS,
        P::Deployment => DEPLOYMENT_COLUMNS,
        P::Hpa => HPA_COLUMNS,
        P::ConfigMap => CONFIGMAP_COLUMNS,
        P::NetworkPolicy => NETPOL_COLUMNS,
        P::RoleBinding => ROLEBINDING_COLUMNS,
        P::ClusterRoleBinding => CLUSTERROLEBINDING_COLUMNS,
        P::Lease => LEASE_COLUMNS,
        P::StorageClass => STORAGECLASS_COLUMNS,
        P::ControllerRevision => CONTROLLERREVISION_COLUMNS,
        P::ResourceQuota => RESOURCEQUOTA_COLUMNS,
        P::PriorityClass => PRIORITYCLASS_COLUMNS,
        P::EndpointSlice => ENDPOINTSLICE_COLUMNS,
    }
}

/// The cells of one row, in the order of [`columns`] (all columns, including
/// the priority-1 ones). `now` is used for Age / Duration / Last Seen cells.
pub fn cells(group: &str, resource: &str, object: &Value, now: Timestamp) -> Vec<Value> {
    use Printer as P;
    let Some(p) = printer_for(group, resource) else {
        return default_cells(object);
    };
    let o = object;
    match p {
        P::Pod => pod_cells(o, now),
        P::Pdb => pdb_cells(o, now),
        P::ReplicationController => rc_cells(o, now),
        P::ReplicaSet => rs_cells(o, now),
        P::DaemonSet => ds_cells(o, now),
        P::Job => job_cells(o, now),
        P::CronJob => cronjob_cells(o, now),
        P::Service => service_cells(o, now),
        P::Ingress => ingress_cells(o, now),
        P::IngressClass => ingressclass_cells(o, now),
        P::StatefulSet => sts_cells(o, now),
        P::Endpoints => endpoints_cells(o, now),
        P::Node => node_cells(o, now),
        P::Event => event_cells(o, now, group == "events.k8s.io"),
        P::Namespace => namespace_cells(o, now),
        P::Secret => secret_cells(o, now),
        P::ServiceAccount => sa_cells(o, now),
        P::PersistentVolume => pv_cells(o, now),
        P::PersistentVolumeClaim => pvc_cells(o, now),
        P::Deployment => deployment_cells(o, now),
        P::Hpa => hpa_cells(o, now),
        P::ConfigMap => configmap_cells(o, now),
        P::NetworkPolicy => netpol_cells(o, now),
        P::RoleBinding | P::ClusterRoleBinding => binding_cells(o, now),
        P::Lease => lease_cells(o, now),
        P::StorageClass => storageclass_cells(o, now),
        P::ControllerRevision => controllerrevision_cells(o, now),
        P::ResourceQuota => resourcequota_cells(o, now),
        P::PriorityClass => priorityclass_cells(o, now),
        P::EndpointSlice => endpointslice_cells(o, now),
    }
}

/// The `conditions` of a table row, when upstream sets any: pods in phase
/// `Succeeded` or `Failed` carry a `Completed` condition. `None` otherwise
/// (the field is omitted from the row).
pub fn row_conditions(group: &str, resource: &str, object: &Value) -> Option<Value> {
    if printer_for(group, resource) != Some(Printer::Pod) {
        return None;
    }
    let (reason, message) = match str_at(object, &["status", "phase"]) {
        "Succeeded" => ("Succeeded", "The pod has completed successfully."),
        "Failed" => ("Failed", "The pod failed."),
        _ => return None,
    };
    Some(json!([{"type": "Completed", "status": "True", "reason": reason, "message": message}]))
}

/// Cells of kube-apiserver's default table convertor ([`DEFAULT_COLUMNS`]):
/// the name and the creation timestamp as RFC 3339 in UTC (Go's zero time
/// `0001-01-01T00:00:00Z` when missing).
pub fn default_cells(object: &Value) -> Vec<Value> {
    let created = match str_at(object, &["metadata", "creationTimestamp"]) {
        "" => "0001-01-01T00:00:00Z".to_string(),
        raw => match raw.parse::<Timestamp>() {
            Ok(ts) => ts.strftime("%Y-%m-%dT%H:%M:%SZ").to_string(),
            Err(_) => raw.to_string(),
        },
    };
    vec![name_cell(object), Value::String(created)]
}

/// Cells for [`CRD_DEFAULT_COLUMNS`]: the name and the age.
pub fn crd_default_cells(object: &Value, now: Timestamp) -> Vec<Value> {
    vec![
        name_cell(object),
        custom_column_cell(
            "date",
            pointer(object, &["metadata", "creationTimestamp"]),
            now,
        ),
    ]
}

/// Converts a value found by a CRD `additionalPrinterColumns` JSONPath into
/// a cell, by the column's `type` (the apiextensions server's rules):
/// a missing/null value is `null`; `integer`, `number` and `boolean` keep
/// JSON values of that kind; `date` turns an RFC 3339 string into an age
/// (`<invalid>` if it does not parse); `string` keeps strings and renders
/// other scalars and objects as text. A value of the wrong kind is `null`.
pub fn custom_column_cell(type_: &str, value: Option<&Value>, now: Timestamp) -> Value {
    let Some(value) = value.filter(|v| !v.is_null()) else {
        return Value::Null;
    };
    match type_ {
        "integer" => match value {
            Value::Number(n) => n
                .as_i64()
                .or_else(|| n.as_f64().map(|f| f as i64))
                .map_or(Value::Null, Value::from),
            _ => Value::Null,
        },
        "number" => match value {
            Value::Number(n) => n.as_f64().map_or(Value::Null, Value::from),
            _ => Value::Null,
        },
        "boolean" => match value {
            Value::Bool(b) => Value::Bool(*b),
            _ => Value::Null,
        },
        "date" => match value {
            Value::String(s) => match s.parse::<Timestamp>() {
                Ok(ts) => Value::String(human_duration_nanos(since_nanos(now, ts))),
                Err(_) => Value::String("<invalid>".into()),
            },
            _ => Value::Null,
        },
        _ => match value {
            Value::String(s) => Value::String(s.clone()),
            other => Value::String(other.to_string()),
        },
    }
}

// ---------------------------------------------------------------------------
// Durations

/// `translateTimestampSince`: the age of an RFC 3339 timestamp relative to
/// `now`, as `HumanDuration`; `"<unknown>"` when missing, empty or unparsable.
pub fn human_age(created: Option<&str>, now: Timestamp) -> String {
    match created.and_then(parse_ts) {
        Some(ts) => human_duration_nanos(since_nanos(now, ts)),
        None => "<unknown>".to_string(),
    }
}

/// Go's `duration.HumanDuration` for a signed duration.
pub fn human_duration(d: jiff::SignedDuration) -> String {
    human_duration_nanos(clamp_i64(d.as_nanos()))
}

fn clamp_i64(n: i128) -> i64 {
    n.clamp(i64::MIN as i128, i64::MAX as i128) as i64
}

/// `now - then` in nanoseconds, saturating like Go's `Time.Sub`.
fn since_nanos(now: Timestamp, then: Timestamp) -> i64 {
    clamp_i64(now.as_nanosecond() - then.as_nanosecond())
}

/// `duration.HumanDuration` on a Go `time.Duration` (nanoseconds).
fn human_duration_nanos(d: i64) -> String {
    const SEC: i64 = 1_000_000_000;
    const MIN: i64 = 60 * SEC;
    const HOUR: i64 = 60 * MIN;
    // A deviation of less than two seconds into the future counts as "now".
    let seconds = d / SEC;
    if seconds < -1 {
        return "<invalid>".into();
    } else if seconds < 0 {
        return "0s".into();
    } else if seconds < 60 * 2 {
        return format!("{seconds}s");
    }
    let minutes = d / MIN;
    if minutes < 10 {
        let s = (d / SEC) % 60;
        if s == 0 {
            return format!("{minutes}m");
        }
        return format!("{minutes}m{s}s");
    } else if minutes < 60 * 3 {
        return format!("{minutes}m");
    }
    let hours = d / HOUR;
    if hours < 8 {
        let m = (d / MIN) % 60;
        if m == 0 {
            return format!("{hours}h");
        }
        format!("{hours}h{m}m")
    } else if hours < 48 {
        format!("{hours}h")
    } else if hours < 24 * 8 {
        let h = hours % 24;
        if h == 0 {
            return format!("{}d", hours / 24);
        }
        format!("{}d{h}h", hours / 24)
    } else if hours < 24 * 365 * 2 {
        format!("{}d", hours / 24)
    } else if hours < 24 * 365 * 8 {
        let dy = (hours / 24) % 365;
        if dy == 0 {
            return format!("{}y", hours / 24 / 365);
        }
        format!("{}y{dy}d", hours / 24 / 365)
    } else {
        format!("{}y", hours / 24 / 365)
    }
}

// ---------------------------------------------------------------------------
// JSON access helpers

fn pointer<'a>(v: &'a Value, path: &[&str]) -> Option<&'a Value> {
    let mut cur = v;
    for key in path {
        cur = cur.as_object()?.get(*key)?;
    }
    if cur.is_null() { None } else { Some(cur) }
}

fn str_at<'a>(v: &'a Value, path: &[&str]) -> &'a str {
    pointer(v, path).and_then(Value::as_str).unwrap_or("")
}

fn opt_str<'a>(v: &'a Value, path: &[&str]) -> Option<&'a str> {
    pointer(v, path).and_then(Value::as_str)
}

fn arr_at<'a>(v: &'a Value, path: &[&str]) -> &'a [Value] {
    pointer(v, path)
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice)
}

fn obj_at<'a>(v: &'a Value, path: &[&str]) -> Option<&'a Map<String, Value>> {
    pointer(v, path).and_then(Value::as_object)
}

fn obj_len(v: &Value, path: &[&str]) -> usize {
    obj_at(v, path).map_or(0, Map::len)
}

fn int_at(v: &Value, path: &[&str]) -> Option<i64> {
    pointer(v, path).and_then(|n| n.as_i64().or_else(|| n.as_f64().map(|f| f as i64)))
}

fn i64_at(v: &Value, path: &[&str]) -> i64 {
    int_at(v, path).unwrap_or(0)
}

fn bool_at(v: &Value, path: &[&str]) -> Option<bool> {
    pointer(v, path).and_then(Value::as_bool)
}

fn parse_ts(s: &str) -> Option<Timestamp> {
    if s.is_empty() { None } else { s.parse().ok() }
}

fn ts_at(v: &Value, path: &[&str]) -> Option<Timestamp> {
    opt_str(v, path).and_then(parse_ts)
}

fn name_cell(o: &Value) -> Value {
    Value::String(str_at(o, &["metadata", "name"]).to_string())
}

fn age_cell(o: &Value, now: Timestamp) -> Value {
    Value::String(age(o, now))
}

fn age(o: &Value, now: Timestamp) -> String {
    human_age(opt_str(o, &["metadata", "creationTimestamp"]), now)
}

fn since(ts: Option<Timestamp>, now: Timestamp) -> String {
    match ts {
        Some(ts) => human_duration_nanos(since_nanos(now, ts)),
        None => "<unknown>".into(),
    }
}

fn s(v: impl Into<String>) -> Value {
    Value::String(v.into())
}

fn is_deleting(o: &Value) -> bool {
    pointer(o, &["metadata", "deletionTimestamp"]).is_some()
}

/// A scalar rendered as Go would print it (`IntOrString.String()`,
/// `Quantity.String()` of an already canonical quantity).
fn scalar_string(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// `Quantity.String()` of an optional quantity field: `"<nil>"` when absent.
fn quantity_or_nil(v: &Value, path: &[&str]) -> String {
    pointer(v, path).map_or_else(|| "<nil>".to_string(), scalar_string)
}

/// `Quantity.String()` of a map entry; a missing entry is the zero quantity.
fn quantity_or_zero(v: &Value, path: &[&str]) -> String {
    pointer(v, path).map_or_else(|| "0".to_string(), scalar_string)
}

/// `labels.FormatLabels`: sorted `k=v` pairs joined by `,`, `<none>` if empty.
fn format_labels(map: Option<&Map<String, Value>>) -> String {
    let mut pairs: Vec<(&str, String)> = map
        .into_iter()
        .flatten()
        .map(|(k, v)| (k.as_str(), scalar_string(v)))
        .collect();
    if pairs.is_empty() {
        return "<none>".into();
    }
    pairs.sort();
    pairs
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// `metav1.LabelSelectorAsSelector(sel).String()`. `Err` for an operator the
/// conversion rejects. A missing or empty selector prints as `""`.
fn selector_string(sel: Option<&Value>) -> Result<String, ()> {
    let Some(sel) = sel.filter(|v| !v.is_null()) else {
        return Ok(String::new());
    };
    let mut reqs: Vec<(String, String)> = Vec::new();
    if let Some(ml) = obj_at(sel, &["matchLabels"]) {
        for (k, v) in ml {
            reqs.push((k.clone(), format!("{k}={}", scalar_string(v))));
        }
    }
    for expr in arr_at(sel, &["matchExpressions"]) {
        let key = str_at(expr, &["key"]);
        let mut values: Vec<String> = arr_at(expr, &["values"])
            .iter()
            .map(scalar_string)
            .collect();
        values.sort();
        let text = match str_at(expr, &["operator"]) {
            "In" => format!("{key} in ({})", values.join(",")),
            "NotIn" => format!("{key} notin ({})", values.join(",")),
            "Exists" => key.to_string(),
            "DoesNotExist" => format!("!{key}"),
            _ => return Err(()),
        };
        reqs.push((key.to_string(), text));
    }
    reqs.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(reqs
        .into_iter()
        .map(|(_, t)| t)
        .collect::<Vec<_>>()
        .join(","))
}

/// `metav1.FormatLabelSelector`: like [`selector_string`] but `<none>` when
/// empty and `<error>` when invalid.
fn format_label_selector(sel: Option<&Value>) -> String {
    match selector_string(sel) {
        Ok(s) if s.is_empty() => "<none>".into(),
        Ok(s) => s,
        Err(()) => "<error>".into(),
    }
}

/// Container names and images of a pod spec, each joined by `,`.
fn container_cells(pod_spec: Option<&Value>) -> (Value, Value) {
    let containers = pod_spec.map_or(&[][..], |spec| arr_at(spec, &["containers"]));
    let names: Vec<&str> = containers.iter().map(|c| str_at(c, &["name"])).collect();
    let images: Vec<&str> = containers.iter().map(|c| str_at(c, &["image"])).collect();
    (s(names.join(",")), s(images.join(",")))
}

fn list_with_more(list: &[String], more: bool, count: usize, max: usize) -> String {
    let ret = list.join(",");
    if more {
        return format!("{ret} + {} more...", count - max);
    }
    if ret.is_empty() {
        "<unset>".into()
    } else {
        ret
    }
}

// ---------------------------------------------------------------------------
// Per-resource printers

fn pod_cells(o: &Value, now: Timestamp) -> Vec<Value> {
    let spec_init = arr_at(o, &["spec", "initContainers"]);
    let mut total = arr_at(o, &["spec", "containers"]).len();
    let mut ready = 0usize;
    let mut restarts: i64 = 0;
    let mut sidecar_restarts: i64 = 0;
    let mut last_restart: Option<Timestamp> = None;
    let mut last_sidecar_restart: Option<Timestamp> = None;

    let phase = opt_str(o, &["status", "phase"]).unwrap_or("Pending");
    let mut reason = match str_at(o, &["status", "reason"]) {
        "" => phase.to_string(),
        r => r.to_string(),
    };
    for cond in arr_at(o, &["status", "conditions"]) {
        if str_at(cond, &["type"]) == "PodScheduled"
            && str_at(cond, &["reason"]) == "SchedulingGated"
        {
            reason = "SchedulingGated".into();
        }
    }

    let is_sidecar = |name: &str| {
        spec_init
            .iter()
            .find(|c| str_at(c, &["name"]) == name)
            .is_some_and(|c| str_at(c, &["restartPolicy"]) == "Always")
    };
    total += spec_init
        .iter()
        .filter(|c| str_at(c, &["restartPolicy"]) == "Always")
        .count();

    fn later(cur: Option<Timestamp>, candidate: Option<Timestamp>) -> Option<Timestamp> {
        match (cur, candidate) {
            (Some(a), Some(b)) if b > a => Some(b),
            (None, b) => b,
            (a, _) => a,
        }
    }

    let mut initializing = false;
    for (i, c) in arr_at(o, &["status", "initContainerStatuses"])
        .iter()
        .enumerate()
    {
        let rc = i64_at(c, &["restartCount"]);
        restarts += rc;
        let finished = ts_at(c, &["lastState", "terminated", "finishedAt"]);
        last_restart = later(last_restart, finished);
        let sidecar = is_sidecar(str_at(c, &["name"]));
        if sidecar {
            sidecar_restarts += rc;
            last_sidecar_restart = later(last_sidecar_restart, finished);
        }
        let terminated = pointer(c, &["state", "terminated"]);
        let waiting = pointer(c, &["state", "waiting"]);
        if terminated.is_some_and(|t| i64_at(t, &["exitCode"]) == 0) {
            continue;
        }
        if sidecar && bool_at(c, &["started"]) == Some(true) {
            if bool_at(c, &["ready"]) == Some(true) {
                ready += 1;
            }
            continue;
        }
        if let Some(t) = terminated {
            reason = match str_at(t, &["reason"]) {
                "" => match i64_at(t, &["signal"]) {
                    0 => format!("Init:ExitCode:{}", i64_at(t, &["exitCode"])),
                    sig => format!("Init:Signal:{sig}"),
                },
                r => format!("Init:{r}"),
            };
        } else if let Some(w) =
            waiting.filter(|w| !matches!(str_at(w, &["reason"]), "" | "PodInitializing"))
        {
            reason = format!("Init:{}", str_at(w, &["reason"]));
        } else {
            reason = format!("Init:{i}/{}", spec_init.len());
        }
        initializing = true;
        break;
    }

    let initialized = arr_at(o, &["status", "conditions"])
        .iter()
        .find(|c| str_at(c, &["type"]) == "Initialized")
        .is_some_and(|c| str_at(c, &["status"]) == "True");

    if !initializing || initialized {
        restarts = sidecar_restarts;
        last_restart = last_sidecar_restart;
        let mut has_running = false;
        for c in arr_at(o, &["status", "containerStatuses"]).iter().rev() {
            restarts += i64_at(c, &["restartCount"]);
            last_restart = later(
                last_restart,
                ts_at(c, &["lastState", "terminated", "finishedAt"]),
            );
            let waiting_reason = opt_str(c, &["state", "waiting", "reason"]).unwrap_or("");
            let terminated = pointer(c, &["state", "terminated"]);
            if pointer(c, &["state", "waiting"]).is_some() && !waiting_reason.is_empty() {
                reason = waiting_reason.to_string();
            } else if let Some(t) = terminated {
                reason = match str_at(t, &["reason"]) {
                    "" => match i64_at(t, &["signal"]) {
                        0 => format!("ExitCode:{}", i64_at(t, &["exitCode"])),
                        sig => format!("Signal:{sig}"),
                    },
                    r => r.to_string(),
                };
            } else if bool_at(c, &["ready"]) == Some(true)
                && pointer(c, &["state", "running"]).is_some()
            {
                has_running = true;
                ready += 1;
            }
        }
        if reason == "Completed" && has_running {
            let pod_ready = arr_at(o, &["status", "conditions"])
                .iter()
                .any(|c| str_at(c, &["type"]) == "Ready" && str_at(c, &["status"]) == "True");
            reason = if pod_ready { "Running" } else { "NotReady" }.into();
        }
    }

    if is_deleting(o) && str_at(o, &["status", "reason"]) == "NodeLost" {
        reason = "Unknown".into();
    } else if is_deleting(o) && !matches!(phase, "Failed" | "Succeeded") {
        reason = "Terminating".into();
    }

    let restarts_str = match last_restart {
        Some(ts) if restarts != 0 => format!("{restarts} ({} ago)", since(Some(ts), now)),
        _ => restarts.to_string(),
    };

    let pod_ip = arr_at(o, &["status", "podIPs"])
        .first()
        .map(|ip| str_at(ip, &["ip"]))
        .filter(|ip| !ip.is_empty())
        .or_else(|| opt_str(o, &["status", "podIP"]))
        .filter(|ip| !ip.is_empty())
        .unwrap_or("<none>");
    let node = opt_str(o, &["spec", "nodeName"])
        .filter(|n| !n.is_empty())
        .unwrap_or("<none>");
    let nominated = opt_str(o, &["status", "nominatedNodeName"])
        .filter(|n| !n.is_empty())
        .unwrap_or("<none>");
    let gates = arr_at(o, &["spec", "readinessGates"]);
    let readiness_gates = if gates.is_empty() {
        "<none>".to_string()
    } else {
        let conds = arr_at(o, &["status", "conditions"]);
        let true_count = gates
            .iter()
            .filter(|g| {
                let t = str_at(g, &["conditionType"]);
                conds
                    .iter()
                    .find(|c| str_at(c, &["type"]) == t)
                    .is_some_and(|c| str_at(c, &["status"]) == "True")
            })
            .count();
        format!("{true_count}/{}", gates.len())
    };

    vec![
        name_cell(o),
        s(format!("{ready}/{total}")),
        s(reason),
        s(restarts_str),
        age_cell(o, now),
        s(pod_ip),
        s(node),
        s(nominated),
        s(readiness_gates),
    ]
}

fn pdb_cells(o: &Value, now: Timestamp) -> Vec<Value> {
    let or_na =
        |field: &str| pointer(o, &["spec", field]).map_or_else(|| "N/A".to_string(), scalar_string);
    vec![
        name_cell(o),
        s(or_na("minAvailable")),
        s(or_na("maxUnavailable")),
        Value::from(i64_at(o, &["status", "disruptionsAllowed"])),
        age_cell(o, now),
    ]
}

fn replicas(o: &Value) -> i64 {
    int_at(o, &["spec", "replicas"]).unwrap_or(1)
}

fn rc_cells(o: &Value, now: Timestamp) -> Vec<Value> {
    let (names, images) = container_cells(pointer(o, &["spec", "template", "spec"]));
    vec![
        name_cell(o),
        Value::from(replicas(o)),
        Value::from(i64_at(o, &["status", "replicas"])),
        Value::from(i64_at(o, &["status", "readyReplicas"])),
        age_cell(o, now),
        names,
        images,
        s(format_labels(obj_at(o, &["spec", "selector"]))),
    ]
}

fn rs_cells(o: &Value, now: Timestamp) -> Vec<Value> {
    let (names, images) = container_cells(pointer(o, &["spec", "template", "spec"]));
    vec![
        name_cell(o),
        Value::from(replicas(o)),
        Value::from(i64_at(o, &["status", "replicas"])),
        Value::from(i64_at(o, &["status", "readyReplicas"])),
        age_cell(o, now),
        names,
        images,
        s(format_label_selector(pointer(o, &["spec", "selector"]))),
    ]
}

fn ds_cells(o: &Value, now: Timestamp) -> Vec<Value> {
    let (names, images) = container_cells(pointer(o, &["spec", "template", "spec"]));
    let st = |f: &str| Value::from(i64_at(o, &["status", f]));
    vec![
        name_cell(o),
        st("desiredNumberScheduled"),
        st("currentNumberScheduled"),
        st("numberReady"),
        st("updatedNumberScheduled"),
        st("numberAvailable"),
        s(format_labels(obj_at(
            o,
            &["spec", "template", "spec", "nodeSelector"],
        ))),
        age_cell(o, now),
        names,
        images,
        s(format_label_selector(pointer(o, &["spec", "selector"]))),
    ]
}

fn has_condition(o: &Value, type_: &str) -> bool {
    arr_at(o, &["status", "conditions"])
        .iter()
        .find(|c| str_at(c, &["type"]) == type_)
        .is_some_and(|c| str_at(c, &["status"]) == "True")
}

fn job_cells(o: &Value, now: Timestamp) -> Vec<Value> {
    let succeeded = i64_at(o, &["status", "succeeded"]);
    let completions = match int_at(o, &["spec", "completions"]) {
        Some(c) => format!("{succeeded}/{c}"),
        None => match int_at(o, &["spec", "parallelism"]).unwrap_or(0) {
            p if p > 1 => format!("{succeeded}/1 of {p}"),
            _ => format!("{succeeded}/1"),
        },
    };
    let start = ts_at(o, &["status", "startTime"]);
    let completion = ts_at(o, &["status", "completionTime"]);
    let duration = match (start, completion) {
        (None, _) => String::new(),
        (Some(st), None) => human_duration_nanos(since_nanos(now, st)),
        (Some(st), Some(done)) => human_duration_nanos(since_nanos(done, st)),
    };
    let status = if has_condition(o, "Complete") {
        "Complete"
    } else if has_condition(o, "Failed") {
        "Failed"
    } else if is_deleting(o) {
        "Terminating"
    } else if has_condition(o, "Suspended") {
        "Suspended"
    } else if has_condition(o, "FailureTarget") {
        "FailureTarget"
    } else {
        "Running"
    };
    let (names, images) = container_cells(pointer(o, &["spec", "template", "spec"]));
    vec![
        name_cell(o),
        s(status),
        s(completions),
        s(duration),
        age_cell(o, now),
        names,
        images,
        s(format_label_selector(pointer(o, &["spec", "selector"]))),
    ]
}

fn cronjob_cells(o: &Value, now: Timestamp) -> Vec<Value> {
    let last_schedule = match opt_str(o, &["status", "lastScheduleTime"]) {
        Some(t) => human_age(Some(t), now),
        None => "<none>".into(),
    };
    let tz = opt_str(o, &["spec", "timeZone"]).unwrap_or("<none>");
    // Defaulting sets spec.suspend to false, so a real object never shows <unset>.
    let suspend = if bool_at(o, &["spec", "suspend"]).unwrap_or(false) {
        "True"
    } else {
        "False"
    };
    let job_spec = pointer(o, &["spec", "jobTemplate", "spec"]);
    let (names, images) = container_cells(job_spec.and_then(|j| pointer(j, &["template", "spec"])));
    vec![
        name_cell(o),
        s(str_at(o, &["spec", "schedule"])),
        s(tz),
        s(suspend),
        Value::from(arr_at(o, &["status", "active"]).len()),
        s(last_schedule),
        age_cell(o, now),
        names,
        images,
        s(format_label_selector(
            job_spec.and_then(|j| pointer(j, &["selector"])),
        )),
    ]
}

/// Sorted, de-duplicated load-balancer ingress points (IP, else hostname).
fn lb_ingress_points(o: &Value) -> Vec<String> {
    let mut out: Vec<String> = arr_at(o, &["status", "loadBalancer", "ingress"])
        .iter()
        .filter_map(|i| {
            let ip = str_at(i, &["ip"]);
            let host = str_at(i, &["hostname"]);
            if !ip.is_empty() {
                Some(ip.to_string())
            } else if !host.is_empty() {
                Some(host.to_string())
            } else {
                None
            }
        })
        .collect();
    out.sort();
    out.dedup();
    out
}

fn service_cells(o: &Value, now: Timestamp) -> Vec<Value> {
    let svc_type = opt_str(o, &["spec", "type"]).unwrap_or("ClusterIP");
    let cluster_ip = arr_at(o, &["spec", "clusterIPs"])
        .first()
        .and_then(Value::as_str)
        .or_else(|| opt_str(o, &["spec", "clusterIP"]).filter(|ip| !ip.is_empty()))
        .unwrap_or("<none>");
    let external_ips: Vec<String> = arr_at(o, &["spec", "externalIPs"])
        .iter()
        .map(scalar_string)
        .collect();
    // The server prints wide rows, so load-balancer addresses are never clipped.
    let external = match svc_type {
        "ClusterIP" | "NodePort" => {
            if external_ips.is_empty() {
                "<none>".to_string()
            } else {
                external_ips.join(",")
            }
        }
        "LoadBalancer" => {
            let mut lb = lb_ingress_points(o);
            if !external_ips.is_empty() {
                lb.extend(external_ips);
                lb.join(",")
            } else if !lb.is_empty() {
                lb.join(",")
            } else {
                "<pending>".to_string()
            }
        }
        "ExternalName" => str_at(o, &["spec", "externalName"]).to_string(),
        _ => "<unknown>".to_string(),
    };
    let ports: Vec<String> = arr_at(o, &["spec", "ports"])
        .iter()
        .map(|p| {
            let port = i64_at(p, &["port"]);
            let proto = opt_str(p, &["protocol"]).unwrap_or("TCP");
            match i64_at(p, &["nodePort"]) {
                np if np > 0 => format!("{port}:{np}/{proto}"),
                _ => format!("{port}/{proto}"),
            }
        })
        .collect();
    let ports = if ports.is_empty() {
        "<none>".to_string()
    } else {
        ports.join(",")
    };
    vec![
        name_cell(o),
        s(svc_type),
        s(cluster_ip),
        s(external),
        s(ports),
        age_cell(o, now),
        s(format_labels(obj_at(o, &["spec", "selector"]))),
    ]
}

fn ingress_cells(o: &Value, now: Timestamp) -> Vec<Value> {
    let class = opt_str(o, &["spec", "ingressClassName"]).unwrap_or("<none>");
    let rules = arr_at(o, &["spec", "rules"]);
    let max = 3;
    let mut list: Vec<&str> = Vec::new();
    let mut more = false;
    for rule in rules {
        if list.len() == max {
            more = true;
        }
        let host = str_at(rule, &["host"]);
        if !more && !host.is_empty() {
            list.push(host);
        }
    }
    let hosts = if list.is_empty() {
        "*".to_string()
    } else if more {
        format!("{} + {} more...", list.join(","), rules.len() - max)
    } else {
        list.join(",")
    };
    let ports = if arr_at(o, &["spec", "tls"]).is_empty() {
        "80"
    } else {
        "80, 443"
    };
    vec![
        name_cell(o),
        s(class),
        s(hosts),
        s(lb_ingress_points(o).join(",")),
        s(ports),
        age_cell(o, now),
    ]
}

fn ingressclass_cells(o: &Value, now: Timestamp) -> Vec<Value> {
    let parameters = match pointer(o, &["spec", "parameters"]) {
        None => "<none>".to_string(),
        Some(p) => {
            let mut out = str_at(p, &["kind"]).to_string();
            if let Some(group) = opt_str(p, &["apiGroup"]) {
                out.push('.');
                out.push_str(group);
            }
            format!("{out}/{}", str_at(p, &["name"]))
        }
    };
    vec![
        name_cell(o),
        s(str_at(o, &["spec", "controller"])),
        s(parameters),
        age_cell(o, now),
    ]
}

fn sts_cells(o: &Value, now: Timestamp) -> Vec<Value> {
    let (names, images) = container_cells(pointer(o, &["spec", "template", "spec"]));
    vec![
        name_cell(o),
        s(format!(
            "{}/{}",
            i64_at(o, &["status", "readyReplicas"]),
            replicas(o)
        )),
        age_cell(o, now),
        names,
        images,
    ]
}

/// `net.JoinHostPort`: brackets hosts that contain a colon (IPv6).
fn join_host_port(host: &str, port: i64) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

fn endpoints_cells(o: &Value, now: Timestamp) -> Vec<Value> {
    vec![name_cell(o), s(format_endpoints(o)), age_cell(o, now)]
}

fn format_endpoints(o: &Value) -> String {
    let subsets = arr_at(o, &["subsets"]);
    if subsets.is_empty() {
        return "<none>".into();
    }
    let max = 3;
    let mut list: Vec<String> = Vec::new();
    let mut more = false;
    let mut count = 0usize;
    for ss in subsets {
        let addresses = arr_at(ss, &["addresses"]);
        let ports = arr_at(ss, &["ports"]);
        if ports.is_empty() {
            // Headless services may have no ports.
            count += addresses.len();
            for addr in addresses {
                if list.len() == max {
                    more = true;
                    break;
                }
                list.push(str_at(addr, &["ip"]).to_string());
            }
            continue;
        }
        for port in ports {
            count += addresses.len();
            for addr in addresses {
                if list.len() == max {
                    more = true;
                    break;
                }
                list.push(join_host_port(
                    str_at(addr, &["ip"]),
                    i64_at(port, &["port"]),
                ));
            }
        }
    }
    let ret = list.join(",");
    if more {
        format!("{ret} + {} more...", count - max)
    } else {
        ret
    }
}

fn node_cells(o: &Value, now: Timestamp) -> Vec<Value> {
    let ready = arr_at(o, &["status", "conditions"])
        .iter()
        .rfind(|c| str_at(c, &["type"]) == "Ready");
    let mut status: Vec<&str> = vec![match ready {
        Some(c) if str_at(c, &["status"]) == "True" => "Ready",
        Some(_) => "NotReady",
        None => "Unknown",
    }];
    if bool_at(o, &["spec", "unschedulable"]) == Some(true) {
        status.push("SchedulingDisabled");
    }
    let mut roles: Vec<String> = Vec::new();
    for (k, v) in obj_at(o, &["metadata", "labels"]).into_iter().flatten() {
        if let Some(role) = k.strip_prefix("node-role.kubernetes.io/") {
            if !role.is_empty() {
                roles.push(role.to_string());
            }
        } else if k == "kubernetes.io/role" {
            let v = scalar_string(v);
            if !v.is_empty() {
                roles.push(v);
            }
        }
    }
    roles.sort();
    roles.dedup();
    let roles = if roles.is_empty() {
        "<none>".to_string()
    } else {
        roles.join(",")
    };
    let address = |kind: &str| {
        arr_at(o, &["status", "addresses"])
            .iter()
            .find(|a| str_at(a, &["type"]) == kind)
            .map_or_else(
                || "<none>".to_string(),
                |a| str_at(a, &["address"]).to_string(),
            )
    };
    let info = |f: &str| match str_at(o, &["status", "nodeInfo", f]) {
        "" => "<unknown>".to_string(),
        v => v.to_string(),
    };
    vec![
        name_cell(o),
        s(status.join(",")),
        s(roles),
        age_cell(o, now),
        s(str_at(o, &["status", "nodeInfo", "kubeletVersion"])),
        s(address("InternalIP")),
        s(address("ExternalIP")),
        s(info("osImage")),
        s(info("kernelVersion")),
        s(info("containerRuntimeVersion")),
    ]
}

/// Core `v1.Event` and `events.k8s.io/v1.Event` share one printer upstream
/// (both are served from the same storage); `new_api` selects the
/// events.k8s.io field names.
fn event_cells(o: &Value, now: Timestamp, new_api: bool) -> Vec<Value> {
    let f = |core: &'static str, events: &'static str| if new_api { events } else { core };
    let first_ts = ts_at(o, &[f("firstTimestamp", "deprecatedFirstTimestamp")]);
    let first = match first_ts {
        Some(t) => since(Some(t), now),
        None => since(ts_at(o, &["eventTime"]), now),
    };
    let mut last = match ts_at(o, &[f("lastTimestamp", "deprecatedLastTimestamp")]) {
        Some(t) => since(Some(t), now),
        None => first.clone(),
    };
    let mut count = i64_at(o, &[f("count", "deprecatedCount")]);
    if let Some(series) = pointer(o, &["series"]) {
        last = since(ts_at(series, &["lastObservedTime"]), now);
        count = i64_at(series, &["count"]);
    } else if count == 0 {
        count = 1;
    }
    let involved = f("involvedObject", "regarding");
    let kind = str_at(o, &[involved, "kind"]).to_lowercase();
    let target = match str_at(o, &[involved, "name"]) {
        "" => kind,
        name => format!("{kind}/{name}"),
    };
    let source_key = f("source", "deprecatedSource");
    let component = match str_at(o, &[source_key, "component"]) {
        "" => str_at(o, &["reportingController"]),
        c => c,
    };
    let host = match str_at(o, &[source_key, "host"]) {
        "" => str_at(o, &["reportingInstance"]),
        h => h,
    };
    let source = if host.is_empty() {
        component.to_string()
    } else {
        format!("{component}, {host}")
    };
    vec![
        s(last),
        s(str_at(o, &["type"])),
        s(str_at(o, &["reason"])),
        s(target),
        s(str_at(o, &[involved, "fieldPath"])),
        s(source),
        s(str_at(o, &[f("message", "note")]).trim()),
        s(first),
        Value::from(count),
        name_cell(o),
    ]
}

fn namespace_cells(o: &Value, now: Timestamp) -> Vec<Value> {
    let phase = match opt_str(o, &["status", "phase"]) {
        Some(p) => p,
        None if is_deleting(o) => "Terminating",
        None => "Active",
    };
    vec![name_cell(o), s(phase), age_cell(o, now)]
}

fn secret_cells(o: &Value, now: Timestamp) -> Vec<Value> {
    // `stringData` is merged into `data` on write by a real server; count the
    // union so that objects stored without that merge print the same.
    let mut keys: Vec<&str> = obj_at(o, &["data"])
        .into_iter()
        .flatten()
        .map(|(k, _)| k.as_str())
        .collect();
    keys.extend(
        obj_at(o, &["stringData"])
            .into_iter()
            .flatten()
            .map(|(k, _)| k.as_str()),
    );
    keys.sort_unstable();
    keys.dedup();
    vec![
        name_cell(o),
        s(opt_str(o, &["type"]).unwrap_or("Opaque")),
        Value::from(keys.len()),
        age_cell(o, now),
    ]
}

fn sa_cells(o: &Value, now: Timestamp) -> Vec<Value> {
    vec![
        name_cell(o),
        Value::from(arr_at(o, &["secrets"]).len()),
        age_cell(o, now),
    ]
}

/// `helper.GetAccessModesAsString`.
fn access_modes(modes: &[Value]) -> String {
    let has = |m: &str| modes.iter().any(|v| v.as_str() == Some(m));
    let mut out = Vec::new();
    for (mode, short) in [
        ("ReadWriteOnce", "RWO"),
        ("ReadOnlyMany", "ROX"),
        ("ReadWriteMany", "RWX"),
        ("ReadWriteOncePod", "RWOP"),
    ] {
        if has(mode) {
            out.push(short);
        }
    }
    out.join(",")
}

const BETA_STORAGE_CLASS_ANNOTATION: &str = "volume.beta.kubernetes.io/storage-class";

fn storage_class_of(o: &Value) -> String {
    if let Some(class) = opt_str(
        o,
        &["metadata", "annotations", BETA_STORAGE_CLASS_ANNOTATION],
    ) {
        return class.to_string();
    }
    str_at(o, &["spec", "storageClassName"]).to_string()
}

fn pv_cells(o: &Value, now: Timestamp) -> Vec<Value> {
    let claim = match pointer(o, &["spec", "claimRef"]) {
        Some(c) => format!("{}/{}", str_at(c, &["namespace"]), str_at(c, &["name"])),
        None => String::new(),
    };
    let phase = if is_deleting(o) {
        "Terminating"
    } else {
        opt_str(o, &["status", "phase"]).unwrap_or("Pending")
    };
    vec![
        name_cell(o),
        s(quantity_or_zero(o, &["spec", "capacity", "storage"])),
        s(access_modes(arr_at(o, &["spec", "accessModes"]))),
        s(opt_str(o, &["spec", "persistentVolumeReclaimPolicy"]).unwrap_or("Retain")),
        s(phase),
        s(claim),
        s(storage_class_of(o)),
        s(opt_str(o, &["spec", "volumeAttributesClassName"]).unwrap_or("<unset>")),
        s(str_at(o, &["status", "reason"])),
        age_cell(o, now),
        s(opt_str(o, &["spec", "volumeMode"]).unwrap_or("Filesystem")),
    ]
}

fn pvc_cells(o: &Value, now: Timestamp) -> Vec<Value> {
    let phase = if is_deleting(o) {
        "Terminating"
    } else {
        opt_str(o, &["status", "phase"]).unwrap_or("Pending")
    };
    let volume = str_at(o, &["spec", "volumeName"]);
    let (capacity, modes) = if volume.is_empty() {
        (String::new(), String::new())
    } else {
        (
            quantity_or_zero(o, &["status", "capacity", "storage"]),
            access_modes(arr_at(o, &["status", "accessModes"])),
        )
    };
    vec![
        name_cell(o),
        s(phase),
        s(volume),
        s(capacity),
        s(modes),
        s(storage_class_of(o)),
        s(opt_str(o, &["spec", "volumeAttributesClassName"]).unwrap_or("<unset>")),
        age_cell(o, now),
        s(opt_str(o, &["spec", "volumeMode"]).unwrap_or("Filesystem")),
    ]
}

fn deployment_cells(o: &Value, now: Timestamp) -> Vec<Value> {
    let (names, images) = container_cells(pointer(o, &["spec", "template", "spec"]));
    let selector =
        selector_string(pointer(o, &["spec", "selector"])).unwrap_or_else(|()| "<invalid>".into());
    vec![
        name_cell(o),
        s(format!(
            "{}/{}",
            i64_at(o, &["status", "readyReplicas"]),
            replicas(o)
        )),
        Value::from(i64_at(o, &["status", "updatedReplicas"])),
        Value::from(i64_at(o, &["status", "availableReplicas"])),
        age_cell(o, now),
        names,
        images,
        s(selector),
    ]
}

/// `formatHPAMetrics` over autoscaling/v2 `spec.metrics` / `status.currentMetrics`.
/// An autoscaling/v1 object (`targetCPUUtilizationPercentage`) is converted
/// the way the server converts it to the internal form.
fn format_hpa_metrics(o: &Value) -> String {
    let mut specs: Vec<Value> = arr_at(o, &["spec", "metrics"]).to_vec();
    let mut statuses: Vec<Value> = arr_at(o, &["status", "currentMetrics"]).to_vec();
    if specs.is_empty()
        && let Some(target) = int_at(o, &["spec", "targetCPUUtilizationPercentage"])
    {
        specs.push(json!({"type": "Resource", "resource": {"name": "cpu",
            "target": {"type": "Utilization", "averageUtilization": target}}}));
        if let Some(current) = int_at(o, &["status", "currentCPUUtilizationPercentage"]) {
            statuses.push(json!({"type": "Resource", "resource": {"name": "cpu",
                "current": {"averageUtilization": current}}}));
        }
    }
    if specs.is_empty() {
        return "<none>".into();
    }
    let unknown = || "<unknown>".to_string();
    let mut list: Vec<String> = Vec::new();
    for (i, spec) in specs.iter().enumerate() {
        let status = statuses.get(i);
        // The status entry for the same source kind, like `statuses[i].X != nil`.
        let st = |key: &str| status.and_then(|st| pointer(st, &[key]));
        let entry = match str_at(spec, &["type"]) {
            "External" | "Object" => {
                let key = if str_at(spec, &["type"]) == "External" {
                    "external"
                } else {
                    "object"
                };
                let target = pointer(spec, &[key, "target"]);
                let target_avg = target.and_then(|t| pointer(t, &["averageValue"]));
                if let Some(avg) = target_avg {
                    let current = st(key)
                        .and_then(|m| pointer(m, &["current", "averageValue"]))
                        .map_or_else(unknown, scalar_string);
                    format!("{current}/{} (avg)", scalar_string(avg))
                } else {
                    let current =
                        st(key).map_or_else(unknown, |m| quantity_or_nil(m, &["current", "value"]));
                    let target = target
                        .map_or_else(|| "<nil>".to_string(), |t| quantity_or_nil(t, &["value"]));
                    format!("{current}/{target}")
                }
            }
            "Pods" => {
                let current = st("pods").map_or_else(unknown, |m| {
                    quantity_or_nil(m, &["current", "averageValue"])
                });
                format!(
                    "{current}/{}",
                    quantity_or_nil(spec, &["pods", "target", "averageValue"])
                )
            }
            "Resource" | "ContainerResource" => {
                let key = if str_at(spec, &["type"]) == "Resource" {
                    "resource"
                } else {
                    "containerResource"
                };
                let name = str_at(spec, &[key, "name"]);
                if let Some(avg) = pointer(spec, &[key, "target", "averageValue"]) {
                    let current = st(key).map_or_else(unknown, |m| {
                        quantity_or_nil(m, &["current", "averageValue"])
                    });
                    format!("{name}: {current}/{}", scalar_string(avg))
                } else {
                    let current = st(key)
                        .and_then(|m| int_at(m, &["current", "averageUtilization"]))
                        .map_or_else(unknown, |u| format!("{u}%"));
                    let target = int_at(spec, &[key, "target", "averageUtilization"])
                        .map_or_else(|| "<auto>".to_string(), |u| format!("{u}%"));
                    format!("{name}: {current}/{target}")
                }
            }
            _ => "<unknown type>".to_string(),
        };
        list.push(entry);
    }
    let max = 2;
    let count = list.len();
    if count > max {
        list.truncate(max);
        return format!("{} + {} more...", list.join(", "), count - max);
    }
    list.join(", ")
}

fn hpa_cells(o: &Value, now: Timestamp) -> Vec<Value> {
    let reference = format!(
        "{}/{}",
        str_at(o, &["spec", "scaleTargetRef", "kind"]),
        str_at(o, &["spec", "scaleTargetRef", "name"])
    );
    // Defaulting sets minReplicas to 1.
    let min_pods = int_at(o, &["spec", "minReplicas"]).unwrap_or(1).to_string();
    vec![
        name_cell(o),
        s(reference),
        s(format_hpa_metrics(o)),
        s(min_pods),
        Value::from(i64_at(o, &["spec", "maxReplicas"])),
        Value::from(i64_at(o, &["status", "currentReplicas"])),
        age_cell(o, now),
    ]
}

fn configmap_cells(o: &Value, now: Timestamp) -> Vec<Value> {
    vec![
        name_cell(o),
        Value::from(obj_len(o, &["data"]) + obj_len(o, &["binaryData"])),
        age_cell(o, now),
    ]
}

fn netpol_cells(o: &Value, now: Timestamp) -> Vec<Value> {
    // The pod selector is a non-pointer field: absent means empty (everything).
    let selector = match pointer(o, &["spec", "podSelector"]) {
        Some(sel) => format_label_selector(Some(sel)),
        None => "<none>".into(),
    };
    vec![name_cell(o), s(selector), age_cell(o, now)]
}

fn binding_cells(o: &Value, now: Timestamp) -> Vec<Value> {
    let role = format!(
        "{}/{}",
        str_at(o, &["roleRef", "kind"]),
        str_at(o, &["roleRef", "name"])
    );
    let (mut users, mut groups, mut sas) = (Vec::new(), Vec::new(), Vec::new());
    for subject in arr_at(o, &["subjects"]) {
        let name = str_at(subject, &["name"]);
        match str_at(subject, &["kind"]) {
            "ServiceAccount" => sas.push(format!("{}/{name}", str_at(subject, &["namespace"]))),
            "User" => users.push(name.to_string()),
            "Group" => groups.push(name.to_string()),
            _ => {}
        }
    }
    vec![
        name_cell(o),
        s(role),
        age_cell(o, now),
        s(users.join(", ")),
        s(groups.join(", ")),
        s(sas.join(", ")),
    ]
}

fn lease_cells(o: &Value, now: Timestamp) -> Vec<Value> {
    vec![
        name_cell(o),
        s(str_at(o, &["spec", "holderIdentity"])),
        age_cell(o, now),
    ]
}

fn storageclass_cells(o: &Value, now: Timestamp) -> Vec<Value> {
    let is_default = [
        "storageclass.kubernetes.io/is-default-class",
        "storageclass.beta.kubernetes.io/is-default-class",
    ]
    .iter()
    .any(|a| opt_str(o, &["metadata", "annotations", a]) == Some("true"));
    let mut name = str_at(o, &["metadata", "name"]).to_string();
    if is_default {
        name.push_str(" (default)");
    }
    vec![
        s(name),
        s(str_at(o, &["provisioner"])),
        s(opt_str(o, &["reclaimPolicy"]).unwrap_or("Delete")),
        s(opt_str(o, &["volumeBindingMode"]).unwrap_or("Immediate")),
        Value::Bool(bool_at(o, &["allowVolumeExpansion"]).unwrap_or(false)),
        age_cell(o, now),
    ]
}

fn controllerrevision_cells(o: &Value, now: Timestamp) -> Vec<Value> {
    let controller = arr_at(o, &["metadata", "ownerReferences"])
        .iter()
        .find(|r| bool_at(r, &["controller"]) == Some(true))
        .map_or_else(
            || "<none>".to_string(),
            |r| {
                let api_version = str_at(r, &["apiVersion"]);
                let group = match api_version.split_once('/') {
                    Some((g, _)) => g,
                    None => "",
                };
                let kind = str_at(r, &["kind"]);
                let name = str_at(r, &["name"]);
                if kind.is_empty() && group.is_empty() {
                    name.to_string()
                } else if group.is_empty() {
                    format!("{}/{name}", kind.to_lowercase())
                } else {
                    format!("{}.{}/{name}", kind.to_lowercase(), group.to_lowercase())
                }
            },
        );
    vec![
        name_cell(o),
        s(controller),
        Value::from(i64_at(o, &["revision"])),
        age_cell(o, now),
    ]
}

fn resourcequota_cells(o: &Value, now: Timestamp) -> Vec<Value> {
    let mut names: Vec<&String> = obj_at(o, &["status", "hard"])
        .into_iter()
        .flatten()
        .map(|(k, _)| k)
        .collect();
    names.sort();
    let (mut requests, mut limits) = (Vec::new(), Vec::new());
    for name in names {
        let used = quantity_or_zero(o, &["status", "used", name]);
        let hard = quantity_or_zero(o, &["status", "hard", name]);
        let entry = format!("{name}: {used}/{hard}");
        match name.split_once('.') {
            Some(("limits", _)) => limits.push(entry),
            _ => requests.push(entry),
        }
    }
    vec![
        name_cell(o),
        s(requests.join(", ")),
        s(limits.join(", ")),
        age_cell(o, now),
    ]
}

fn priorityclass_cells(o: &Value, now: Timestamp) -> Vec<Value> {
    vec![
        name_cell(o),
        Value::from(i64_at(o, &["value"])),
        Value::Bool(bool_at(o, &["globalDefault"]).unwrap_or(false)),
        age_cell(o, now),
        s(opt_str(o, &["preemptionPolicy"]).unwrap_or("PreemptLowerPriority")),
    ]
}

fn endpointslice_cells(o: &Value, now: Timestamp) -> Vec<Value> {
    let max = 3;
    let ports = arr_at(o, &["ports"]);
    let port_list: Vec<String> = ports
        .iter()
        .take(max)
        .map(|p| match (int_at(p, &["port"]), opt_str(p, &["name"])) {
            (Some(n), _) => n.to_string(),
            (None, Some(name)) => name.to_string(),
            (None, None) => "*".to_string(),
        })
        .collect();
    let ports_str = list_with_more(&port_list, ports.len() > max, ports.len(), max);
    let addresses: Vec<String> = arr_at(o, &["endpoints"])
        .iter()
        .flat_map(|e| arr_at(e, &["addresses"]).iter().map(scalar_string))
        .collect();
    let shown: Vec<String> = addresses.iter().take(max).cloned().collect();
    let endpoints_str = list_with_more(&shown, addresses.len() > max, addresses.len(), max);
    vec![
        name_cell(o),
        s(str_at(o, &["addressType"])),
        s(ports_str),
        s(endpoints_str),
        age_cell(o, now),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn now() -> Timestamp {
        "2024-06-01T12:00:00Z".parse().unwrap()
    }

    /// An RFC 3339 timestamp `secs` seconds before [`now`].
    fn ago(secs: i64) -> String {
        let ts = now()
            .checked_sub(jiff::SignedDuration::from_secs(secs))
            .unwrap();
        ts.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
    }

    fn meta(name: &str, age_secs: i64) -> Value {
        json!({"name": name, "namespace": "default", "creationTimestamp": ago(age_secs)})
    }

    fn with(mut base: Value, extra: Value) -> Value {
        if let (Some(b), Some(e)) = (base.as_object_mut(), extra.as_object()) {
            for (k, v) in e {
                b.insert(k.clone(), v.clone());
            }
        }
        base
    }

    fn obj(name: &str, age_secs: i64, rest: Value) -> Value {
        with(json!({"metadata": meta(name, age_secs)}), rest)
    }

    fn row(group: &str, resource: &str, o: &Value) -> Vec<Value> {
        let cells = cells(group, resource, o, now());
        assert_eq!(
            cells.len(),
            columns(group, resource).len(),
            "cells/columns mismatch for {group}/{resource}"
        );
        cells
    }

    fn names(group: &str, resource: &str) -> Vec<&'static str> {
        columns(group, resource).iter().map(|c| c.name).collect()
    }

    fn wide_names(group: &str, resource: &str) -> Vec<&'static str> {
        columns(group, resource)
            .iter()
            .filter(|c| c.priority == 1)
            .map(|c| c.name)
            .collect()
    }

    #[test]
    fn human_duration_boundaries() {
        let sec = 1_000_000_000i64;
        let cases: &[(i64, &str)] = &[
            (-3 * sec, "<invalid>"),
            (-2 * sec, "<invalid>"),
            (-2 * sec + 1, "0s"),
            (-sec, "0s"),
            (-1, "0s"),
            (0, "0s"),
            (sec - 1, "0s"),
            (5 * sec, "5s"),
            (119 * sec, "119s"),
            (120 * sec, "2m"),
            (123 * sec, "2m3s"),
            (9 * 60 * sec + 59 * sec, "9m59s"),
            (10 * 60 * sec, "10m"),
            (10 * 60 * sec + 59 * sec, "10m"),
            (179 * 60 * sec, "179m"),
            (3 * 3600 * sec, "3h"),
            (3 * 3600 * sec + 4 * 60 * sec + 5 * sec, "3h4m"),
            (7 * 3600 * sec + 59 * 60 * sec, "7h59m"),
            (8 * 3600 * sec, "8h"),
            (8 * 3600 * sec + 30 * 60 * sec, "8h"),
            (47 * 3600 * sec, "47h"),
            (48 * 3600 * sec, "2d"),
            (49 * 3600 * sec, "2d1h"),
            ((7 * 24 + 23) * 3600 * sec, "7d23h"),
            (8 * 24 * 3600 * sec, "8d"),
            (5 * 24 * 3600 * sec, "5d"),
            ((365 * 2 - 1) * 24 * 3600 * sec, "729d"),
            (365 * 2 * 24 * 3600 * sec, "2y"),
            ((365 * 2 + 45) * 24 * 3600 * sec, "2y45d"),
            ((365 * 8 - 1) * 24 * 3600 * sec, "7y364d"),
            (365 * 8 * 24 * 3600 * sec, "8y"),
            ((365 * 9 + 100) * 24 * 3600 * sec, "9y"),
        ];
        for (nanos, want) in cases {
            assert_eq!(human_duration_nanos(*nanos), *want, "for {nanos}ns");
            assert_eq!(
                human_duration(jiff::SignedDuration::from_nanos(*nanos)),
                *want
            );
        }
    }

    #[test]
    fn human_age_handles_missing_and_bad_timestamps() {
        assert_eq!(human_age(None, now()), "<unknown>");
        assert_eq!(human_age(Some(""), now()), "<unknown>");
        assert_eq!(human_age(Some("yesterday"), now()), "<unknown>");
        assert_eq!(human_age(Some(&ago(300)), now()), "5m");
        assert_eq!(human_age(Some("2024-06-01T11:59:59.5+00:00"), now()), "0s");
        assert_eq!(human_age(Some("2024-06-01T12:00:10Z"), now()), "<invalid>");
    }

    #[test]
    fn column_definitions_shape() {
        for (g, r) in [
            ("", "pods"),
            ("", "services"),
            ("apps", "deployments"),
            ("batch", "jobs"),
            ("", "nodes"),
            ("rbac.authorization.k8s.io", "roles"),
            ("example.com", "widgets"),
        ] {
            let cols = columns(g, r);
            let name_cols: Vec<_> = cols.iter().filter(|c| c.format == "name").collect();
            assert_eq!(name_cols.len(), 1, "{g}/{r}");
            assert_eq!(name_cols[0].name, "Name");
            for c in cols {
                assert!(!c.description.is_empty());
                assert!(matches!(c.type_, "string" | "integer" | "boolean" | "date"));
            }
        }
        assert_eq!(
            POD_COLUMNS[0].to_json(),
            json!({"name": "Name", "type": "string", "format": "name",
                   "description": NAME_DESC, "priority": 0})
        );
        assert_eq!(POD_COLUMNS[5].to_json()["priority"], json!(1));
    }

    #[test]
    fn column_names_per_resource() {
        let cases: &[(&str, &str, &[&str], &[&str])] = &[
            (
                "",
                "pods",
                &[
                    "Name",
                    "Ready",
                    "Status",
                    "Restarts",
                    "Age",
                    "IP",
                    "Node",
                    "Nominated Node",
                    "Readiness Gates",
                ],
                &["IP", "Node", "Nominated Node", "Readiness Gates"],
            ),
            (
                "",
                "services",
                &[
                    "Name",
                    "Type",
                    "Cluster-IP",
                    "External-IP",
                    "Port(s)",
                    "Age",
                    "Selector",
                ],
                &["Selector"],
            ),
            ("", "endpoints", &["Name", "Endpoints", "Age"], &[]),
            ("", "configmaps", &["Name", "Data", "Age"], &[]),
            ("", "secrets", &["Name", "Type", "Data", "Age"], &[]),
            ("", "serviceaccounts", &["Name", "Secrets", "Age"], &[]),
            ("", "namespaces", &["Name", "Status", "Age"], &[]),
            (
                "",
                "nodes",
                &[
                    "Name",
                    "Status",
                    "Roles",
                    "Age",
                    "Version",
                    "Internal-IP",
                    "External-IP",
                    "OS-Image",
                    "Kernel-Version",
                    "Container-Runtime",
                ],
                &[
                    "Internal-IP",
                    "External-IP",
                    "OS-Image",
                    "Kernel-Version",
                    "Container-Runtime",
                ],
            ),
            (
                "",
                "events",
                &[
                    "Last Seen",
                    "Type",
                    "Reason",
                    "Object",
                    "Subobject",
                    "Source",
                    "Message",
                    "First Seen",
                    "Count",
                    "Name",
                ],
                &["Subobject", "Source", "First Seen", "Count", "Name"],
            ),
            (
                "events.k8s.io",
                "events",
                &[
                    "Last Seen",
                    "Type",
                    "Reason",
                    "Object",
                    "Subobject",
                    "Source",
                    "Message",
                    "First Seen",
                    "Count",
                    "Name",
                ],
                &["Subobject", "Source", "First Seen", "Count", "Name"],
            ),
            (
                "",
                "persistentvolumeclaims",
                &[
                    "Name",
                    "Status",
                    "Volume",
                    "Capacity",
                    "Access Modes",
                    "StorageClass",
                    "VolumeAttributesClass",
                    "Age",
                    "VolumeMode",
                ],
                &["VolumeMode"],
            ),
            (
                "",
                "persistentvolumes",
                &[
                    "Name",
                    "Capacity",
                    "Access Modes",
                    "Reclaim Policy",
                    "Status",
                    "Claim",
                    "StorageClass",
                    "VolumeAttributesClass",
                    "Reason",
                    "Age",
                    "VolumeMode",
                ],
                &["VolumeMode"],
            ),
            ("", "limitranges", &["Name", "Created At"], &[]),
            (
                "",
                "resourcequotas",
                &["Name", "Request", "Limit", "Age"],
                &[],
            ),
            (
                "",
                "replicationcontrollers",
                &[
                    "Name",
                    "Desired",
                    "Current",
                    "Ready",
                    "Age",
                    "Containers",
                    "Images",
                    "Selector",
                ],
                &["Containers", "Images", "Selector"],
            ),
            (
                "apps",
                "deployments",
                &[
                    "Name",
                    "Ready",
                    "Up-to-date",
                    "Available",
                    "Age",
                    "Containers",
                    "Images",
                    "Selector",
                ],
                &["Containers", "Images", "Selector"],
            ),
            (
                "apps",
                "replicasets",
                &[
                    "Name",
                    "Desired",
                    "Current",
                    "Ready",
                    "Age",
                    "Containers",
                    "Images",
                    "Selector",
                ],
                &["Containers", "Images", "Selector"],
            ),
            (
                "apps",
                "statefulsets",
                &["Name", "Ready", "Age", "Containers", "Images"],
                &["Containers", "Images"],
            ),
            (
                "apps",
                "daemonsets",
                &[
                    "Name",
                    "Desired",
                    "Current",
                    "Ready",
                    "Up-to-date",
                    "Available",
                    "Node Selector",
                    "Age",
                    "Containers",
                    "Images",
                    "Selector",
                ],
                &["Containers", "Images", "Selector"],
            ),
            (
                "apps",
                "controllerrevisions",
                &["Name", "Controller", "Revision", "Age"],
                &[],
            ),
            (
                "batch",
                "jobs",
                &[
                    "Name",
                    "Status",
                    "Completions",
                    "Duration",
                    "Age",
                    "Containers",
                    "Images",
                    "Selector",
                ],
                &["Containers", "Images", "Selector"],
            ),
            (
                "batch",
                "cronjobs",
                &[
                    "Name",
                    "Schedule",
                    "Timezone",
                    "Suspend",
                    "Active",
                    "Last Schedule",
                    "Age",
                    "Containers",
                    "Images",
                    "Selector",
                ],
                &["Containers", "Images", "Selector"],
            ),
            (
                "rbac.authorization.k8s.io",
                "roles",
                &["Name", "Created At"],
                &[],
            ),
            (
                "rbac.authorization.k8s.io",
                "clusterroles",
                &["Name", "Created At"],
                &[],
            ),
            (
                "rbac.authorization.k8s.io",
                "rolebindings",
                &["Name", "Role", "Age", "Users", "Groups", "ServiceAccounts"],
                &["Users", "Groups", "ServiceAccounts"],
            ),
            (
                "rbac.authorization.k8s.io",
                "clusterrolebindings",
                &["Name", "Role", "Age", "Users", "Groups", "ServiceAccounts"],
                &["Users", "Groups", "ServiceAccounts"],
            ),
            (
                "coordination.k8s.io",
                "leases",
                &["Name", "Holder", "Age"],
                &[],
            ),
            (
                "discovery.k8s.io",
                "endpointslices",
                &["Name", "AddressType", "Ports", "Endpoints", "Age"],
                &[],
            ),
            (
                "networking.k8s.io",
                "ingresses",
                &["Name", "Class", "Hosts", "Address", "Ports", "Age"],
                &[],
            ),
            (
                "networking.k8s.io",
                "ingressclasses",
                &["Name", "Controller", "Parameters", "Age"],
                &[],
            ),
            (
                "networking.k8s.io",
                "networkpolicies",
                &["Name", "Pod-Selector", "Age"],
                &[],
            ),
            (
                "policy",
                "poddisruptionbudgets",
                &[
                    "Name",
                    "Min Available",
                    "Max Unavailable",
                    "Allowed Disruptions",
                    "Age",
                ],
                &[],
            ),
            (
                "storage.k8s.io",
                "storageclasses",
                &[
                    "Name",
                    "Provisioner",
                    "ReclaimPolicy",
                    "VolumeBindingMode",
                    "AllowVolumeExpansion",
                    "Age",
                ],
                &[],
            ),
            (
                "scheduling.k8s.io",
                "priorityclasses",
                &["Name", "Value", "Global-Default", "Age", "PreemptionPolicy"],
                &[],
            ),
            (
                "autoscaling",
                "horizontalpodautoscalers",
                &[
                    "Name",
                    "Reference",
                    "Targets",
                    "MinPods",
                    "MaxPods",
                    "Replicas",
                    "Age",
                ],
                &[],
            ),
            (
                "stable.example.com",
                "crontabs",
                &["Name", "Created At"],
                &[],
            ),
        ];
        for (g, r, all, wide) in cases {
            assert_eq!(names(g, r), *all, "{g}/{r}");
            assert_eq!(wide_names(g, r), *wide, "{g}/{r}");
        }
        assert!(!has_printer("rbac.authorization.k8s.io", "roles"));
        assert!(has_printer("", "pods"));
        assert_eq!(columns("", "limitranges")[1].type_, "date");
    }

    #[test]
    fn default_and_crd_cells() {
        let role =
            json!({"metadata": {"name": "reader", "creationTimestamp": "2024-05-01T10:00:00Z"}});
        assert_eq!(
            row("rbac.authorization.k8s.io", "roles", &role),
            vec![json!("reader"), json!("2024-05-01T10:00:00Z")]
        );
        let odd =
            json!({"metadata": {"name": "x", "creationTimestamp": "2024-05-01T12:00:00+02:00"}});
        assert_eq!(default_cells(&odd)[1], json!("2024-05-01T10:00:00Z"));
        assert_eq!(
            default_cells(&json!({"metadata": {"name": "x"}}))[1],
            json!("0001-01-01T00:00:00Z")
        );
        let cr = obj("my-widget", 3 * 86400, json!({}));
        assert_eq!(
            crd_default_cells(&cr, now()),
            vec![json!("my-widget"), json!("3d")]
        );
        assert_eq!(CRD_DEFAULT_COLUMNS[1].name, "Age");
        assert_eq!(CRD_DEFAULT_COLUMNS[1].type_, "date");
        assert_eq!(
            custom_column_cell("integer", Some(&json!(3)), now()),
            json!(3)
        );
        assert_eq!(
            custom_column_cell("integer", Some(&json!(3.7)), now()),
            json!(3)
        );
        assert_eq!(
            custom_column_cell("integer", Some(&json!("3")), now()),
            Value::Null
        );
        assert_eq!(
            custom_column_cell("boolean", Some(&json!(true)), now()),
            json!(true)
        );
        assert_eq!(
            custom_column_cell("number", Some(&json!(2)), now()),
            json!(2.0)
        );
        assert_eq!(
            custom_column_cell("date", Some(&json!("garbage")), now()),
            json!("<invalid>")
        );
        assert_eq!(
            custom_column_cell("string", Some(&json!("x")), now()),
            json!("x")
        );
        assert_eq!(
            custom_column_cell("string", Some(&json!(5)), now()),
            json!("5")
        );
        assert_eq!(custom_column_cell("string", None, now()), Value::Null);
    }

    fn container_status(name: &str, state: Value, ready: bool, restarts: i64) -> Value {
        json!({"name": name, "state": state, "ready": ready, "restartCount": restarts, "image": "img", "imageID": ""})
    }

    fn pod(spec: Value, status: Value) -> Value {
        obj("web-0", 600, json!({"spec": spec, "status": status}))
    }

    fn two_containers() -> Value {
        json!({"containers": [{"name": "app", "image": "nginx"}, {"name": "side", "image": "envoy"}], "nodeName": "node-1"})
    }

    #[test]
    fn pod_cells_table() {
        let running = json!({"running": {"startedAt": ago(500)}});
        let cases: Vec<(&str, Value, [&str; 4])> = vec![
            (
                "running, one ready",
                pod(
                    two_containers(),
                    json!({"phase": "Running", "podIP": "10.1.0.5", "podIPs": [{"ip": "10.1.0.5"}],
                      "conditions": [{"type": "Ready", "status": "False"}],
                      "containerStatuses": [
                        container_status("app", running.clone(), true, 0),
                        container_status("side", running.clone(), false, 0)]}),
                ),
                ["1/2", "Running", "0", "10m"],
            ),
            (
                "pending, no statuses",
                pod(two_containers(), json!({"phase": "Pending"})),
                ["0/2", "Pending", "0", "10m"],
            ),
            (
                "crash loop with restarts",
                pod(
                    two_containers(),
                    json!({"phase": "Running",
                      "containerStatuses": [
                        with(container_status("app", json!({"waiting": {"reason": "CrashLoopBackOff"}}), false, 3),
                             json!({"lastState": {"terminated": {"exitCode": 1, "reason": "Error", "finishedAt": ago(300)}}})),
                        container_status("side", running.clone(), true, 0)]}),
                ),
                ["1/2", "CrashLoopBackOff", "3 (5m ago)", "10m"],
            ),
            (
                "completed",
                pod(
                    json!({"containers": [{"name": "app", "image": "busybox"}]}),
                    json!({"phase": "Succeeded",
                      "containerStatuses": [container_status("app", json!({"terminated": {"exitCode": 0, "reason": "Completed"}}), false, 0)]}),
                ),
                ["0/1", "Completed", "0", "10m"],
            ),
            (
                "one completed, one still running, not ready",
                pod(
                    two_containers(),
                    json!({"phase": "Running", "conditions": [{"type": "Ready", "status": "False"}],
                      "containerStatuses": [
                        container_status("app", json!({"terminated": {"exitCode": 0, "reason": "Completed"}}), false, 0),
                        container_status("side", running.clone(), true, 0)]}),
                ),
                ["1/2", "NotReady", "0", "10m"],
            ),
            (
                "one completed, one still running, ready",
                pod(
                    two_containers(),
                    json!({"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}],
                      "containerStatuses": [
                        container_status("app", json!({"terminated": {"exitCode": 0, "reason": "Completed"}}), false, 0),
                        container_status("side", running.clone(), true, 0)]}),
                ),
                ["1/2", "Running", "0", "10m"],
            ),
            (
                "terminated without reason, by signal",
                pod(
                    json!({"containers": [{"name": "app", "image": "x"}]}),
                    json!({"phase": "Failed",
                      "containerStatuses": [container_status("app", json!({"terminated": {"exitCode": 137, "signal": 9}}), false, 0)]}),
                ),
                ["0/1", "Signal:9", "0", "10m"],
            ),
            (
                "terminated without reason, exit code",
                pod(
                    json!({"containers": [{"name": "app", "image": "x"}]}),
                    json!({"phase": "Failed",
                      "containerStatuses": [container_status("app", json!({"terminated": {"exitCode": 2}}), false, 0)]}),
                ),
                ["0/1", "ExitCode:2", "0", "10m"],
            ),
            (
                "evicted (status.reason)",
                pod(
                    json!({"containers": [{"name": "app", "image": "x"}]}),
                    json!({"phase": "Failed", "reason": "Evicted", "message": "low on memory"}),
                ),
                ["0/1", "Evicted", "0", "10m"],
            ),
            (
                "scheduling gated",
                pod(
                    json!({"containers": [{"name": "app", "image": "x"}], "schedulingGates": [{"name": "g"}]}),
                    json!({"phase": "Pending", "conditions": [{"type": "PodScheduled", "status": "False", "reason": "SchedulingGated"}]}),
                ),
                ["0/1", "SchedulingGated", "0", "10m"],
            ),
            (
                "image pull backoff",
                pod(
                    json!({"containers": [{"name": "app", "image": "nope"}]}),
                    json!({"phase": "Pending",
                      "containerStatuses": [container_status("app", json!({"waiting": {"reason": "ImagePullBackOff"}}), false, 0)]}),
                ),
                ["0/1", "ImagePullBackOff", "0", "10m"],
            ),
        ];
        for (what, o, want) in cases {
            let c = row("", "pods", &o);
            let got: Vec<&str> = c[1..5].iter().map(|v| v.as_str().unwrap_or("?")).collect();
            assert_eq!(got, want, "{what}");
            assert_eq!(c[0], json!("web-0"));
        }
    }

    #[test]
    fn pod_init_containers() {
        let spec = json!({
            "initContainers": [{"name": "init-a", "image": "busybox"}, {"name": "init-b", "image": "busybox"}],
            "containers": [{"name": "app", "image": "nginx"}]});
        let done = json!({"terminated": {"exitCode": 0, "reason": "Completed"}});
        let cases: Vec<(&str, Value, &str, &str)> = vec![
            (
                "first init running",
                json!({"phase": "Pending", "initContainerStatuses": [
                    container_status("init-a", json!({"running": {}}), false, 0),
                    container_status("init-b", json!({"waiting": {"reason": "PodInitializing"}}), false, 0)],
                  "containerStatuses": [container_status("app", json!({"waiting": {"reason": "PodInitializing"}}), false, 0)]}),
                "Init:0/2",
                "0/1",
            ),
            (
                "second init waiting on PodInitializing",
                json!({"phase": "Pending", "initContainerStatuses": [
                    container_status("init-a", done.clone(), false, 0),
                    container_status("init-b", json!({"waiting": {"reason": "PodInitializing"}}), false, 0)]}),
                "Init:1/2",
                "0/1",
            ),
            (
                "init crash looping",
                json!({"phase": "Pending", "initContainerStatuses": [
                    container_status("init-a", json!({"waiting": {"reason": "CrashLoopBackOff"}}), false, 4)]}),
                "Init:CrashLoopBackOff",
                "0/1",
            ),
            (
                "init failed with reason",
                json!({"phase": "Pending", "initContainerStatuses": [
                    container_status("init-a", json!({"terminated": {"exitCode": 1, "reason": "Error"}}), false, 0)]}),
                "Init:Error",
                "0/1",
            ),
            (
                "init failed without reason",
                json!({"phase": "Pending", "initContainerStatuses": [
                    container_status("init-a", json!({"terminated": {"exitCode": 3}}), false, 0)]}),
                "Init:ExitCode:3",
                "0/1",
            ),
            (
                "init killed by signal",
                json!({"phase": "Pending", "initContainerStatuses": [
                    container_status("init-a", json!({"terminated": {"exitCode": 0, "signal": 15, "reason": ""}}), false, 0)]}),
                // exit code 0 means the init container completed
                "Pending",
                "0/1",
            ),
            (
                "all inits done, app running",
                json!({"phase": "Running", "conditions": [{"type": "Initialized", "status": "True"}],
                  "initContainerStatuses": [
                    container_status("init-a", done.clone(), false, 0),
                    container_status("init-b", done.clone(), false, 0)],
                  "containerStatuses": [container_status("app", json!({"running": {}}), true, 0)]}),
                "Running",
                "1/1",
            ),
        ];
        for (what, status, want_status, want_ready) in cases {
            let o = pod(spec.clone(), status);
            let c = row("", "pods", &o);
            assert_eq!(c[2], json!(want_status), "{what}");
            assert_eq!(c[1], json!(want_ready), "{what}");
        }
        // Init restarts count while initializing.
        let o = pod(
            spec,
            json!({"phase": "Pending", "initContainerStatuses": [
                with(container_status("init-a", json!({"waiting": {"reason": "CrashLoopBackOff"}}), false, 4),
                     json!({"lastState": {"terminated": {"exitCode": 1, "finishedAt": ago(30)}}}))]}),
        );
        assert_eq!(row("", "pods", &o)[3], json!("4 (30s ago)"));
    }

    #[test]
    fn pod_sidecar_containers() {
        let spec = json!({
            "initContainers": [{"name": "proxy", "image": "envoy", "restartPolicy": "Always"}],
            "containers": [{"name": "app", "image": "nginx"}]});
        let o = pod(
            spec.clone(),
            json!({"phase": "Running", "conditions": [{"type": "Initialized", "status": "True"}, {"type": "Ready", "status": "True"}],
              "initContainerStatuses": [with(container_status("proxy", json!({"running": {}}), true, 2),
                json!({"started": true, "lastState": {"terminated": {"exitCode": 1, "finishedAt": ago(7200)}}}))],
              "containerStatuses": [with(container_status("app", json!({"running": {}}), true, 1),
                json!({"lastState": {"terminated": {"exitCode": 1, "finishedAt": ago(3600)}}}))]}),
        );
        let c = row("", "pods", &o);
        assert_eq!(c[1], json!("2/2"));
        assert_eq!(c[2], json!("Running"));
        assert_eq!(c[3], json!("3 (60m ago)"));
        // A sidecar not yet started blocks initialization.
        let o = pod(
            spec,
            json!({"phase": "Pending", "initContainerStatuses": [
                with(container_status("proxy", json!({"running": {}}), false, 0), json!({"started": false}))]}),
        );
        let c = row("", "pods", &o);
        assert_eq!(c[1], json!("0/2"));
        assert_eq!(c[2], json!("Init:0/1"));
    }

    #[test]
    fn pod_terminating_and_wide() {
        let mut o = pod(
            with(
                two_containers(),
                json!({"readinessGates": [{"conditionType": "example.com/gate"}, {"conditionType": "other"}]}),
            ),
            json!({"phase": "Running", "podIPs": [{"ip": "fd00::5"}, {"ip": "10.1.0.5"}], "nominatedNodeName": "node-2",
              "conditions": [{"type": "example.com/gate", "status": "True"}, {"type": "Ready", "status": "True"}],
              "containerStatuses": [
                container_status("app", json!({"running": {}}), true, 0),
                container_status("side", json!({"running": {}}), true, 0)]}),
        );
        let c = row("", "pods", &o);
        assert_eq!(c[2], json!("Running"));
        assert_eq!(
            &c[5..],
            &[
                json!("fd00::5"),
                json!("node-1"),
                json!("node-2"),
                json!("1/2")
            ]
        );
        o["metadata"]["deletionTimestamp"] = json!(ago(1));
        assert_eq!(row("", "pods", &o)[2], json!("Terminating"));
        o["status"]["reason"] = json!("NodeLost");
        assert_eq!(row("", "pods", &o)[2], json!("Unknown"));
        // A finished pod being deleted keeps its terminal status.
        let mut done = pod(
            json!({"containers": [{"name": "app", "image": "x"}]}),
            json!({"phase": "Succeeded", "containerStatuses": [container_status("app", json!({"terminated": {"exitCode": 0, "reason": "Completed"}}), false, 0)]}),
        );
        done["metadata"]["deletionTimestamp"] = json!(ago(1));
        assert_eq!(row("", "pods", &done)[2], json!("Completed"));
        assert_eq!(
            row_conditions("", "pods", &done),
            Some(
                json!([{"type": "Completed", "status": "True", "reason": "Succeeded", "message": "The pod has completed successfully."}])
            )
        );
        assert_eq!(row_conditions("", "pods", &o), None);
        // Unscheduled pod: placeholders.
        let bare = pod(
            json!({"containers": [{"name": "app", "image": "x"}]}),
            json!({"phase": "Pending"}),
        );
        assert_eq!(
            &row("", "pods", &bare)[5..],
            &[
                json!("<none>"),
                json!("<none>"),
                json!("<none>"),
                json!("<none>")
            ]
        );
        // Legacy podIP only.
        let legacy = pod(
            json!({"containers": []}),
            json!({"phase": "Running", "podIP": "10.0.0.9"}),
        );
        assert_eq!(row("", "pods", &legacy)[5], json!("10.0.0.9"));
    }

    #[test]
    fn service_cells_table() {
        let cases: Vec<(&str, Value, [&str; 4])> = vec![
            (
                "cluster ip",
                json!({"spec": {"type": "ClusterIP", "clusterIP": "10.96.0.10", "clusterIPs": ["10.96.0.10"],
                  "ports": [{"port": 53, "protocol": "UDP"}, {"port": 53, "protocol": "TCP"}, {"port": 9153, "protocol": "TCP"}],
                  "selector": {"k8s-app": "kube-dns"}}}),
                [
                    "ClusterIP",
                    "10.96.0.10",
                    "<none>",
                    "53/UDP,53/TCP,9153/TCP",
                ],
            ),
            (
                "headless, no ports",
                json!({"spec": {"clusterIP": "None", "clusterIPs": ["None"]}}),
                ["ClusterIP", "None", "<none>", "<none>"],
            ),
            (
                "node port with external ips",
                json!({"spec": {"type": "NodePort", "clusterIPs": ["10.96.1.1"], "externalIPs": ["1.2.3.4", "5.6.7.8"],
                  "ports": [{"port": 80, "nodePort": 30080, "protocol": "TCP"}, {"port": 443, "nodePort": 30443}]}}),
                [
                    "NodePort",
                    "10.96.1.1",
                    "1.2.3.4,5.6.7.8",
                    "80:30080/TCP,443:30443/TCP",
                ],
            ),
            (
                "load balancer pending",
                json!({"spec": {"type": "LoadBalancer", "clusterIPs": ["10.96.2.2"], "ports": [{"port": 80, "nodePort": 31000, "protocol": "TCP"}]},
                  "status": {"loadBalancer": {}}}),
                ["LoadBalancer", "10.96.2.2", "<pending>", "80:31000/TCP"],
            ),
            (
                "load balancer with long hostname (not clipped server-side)",
                json!({"spec": {"type": "LoadBalancer", "clusterIPs": ["10.96.2.3"], "ports": [{"port": 443, "nodePort": 30443, "protocol": "TCP"}]},
                  "status": {"loadBalancer": {"ingress": [{"hostname": "a1b2c3.elb.us-east-1.amazonaws.com"}, {"ip": "203.0.113.9"}, {"ip": "203.0.113.9"}]}}}),
                [
                    "LoadBalancer",
                    "10.96.2.3",
                    "203.0.113.9,a1b2c3.elb.us-east-1.amazonaws.com",
                    "443:30443/TCP",
                ],
            ),
            (
                "load balancer with ingress and external ips",
                json!({"spec": {"type": "LoadBalancer", "clusterIPs": ["10.96.2.4"], "externalIPs": ["9.9.9.9"], "ports": [{"port": 80, "protocol": "TCP"}]},
                  "status": {"loadBalancer": {"ingress": [{"ip": "203.0.113.7"}]}}}),
                ["LoadBalancer", "10.96.2.4", "203.0.113.7,9.9.9.9", "80/TCP"],
            ),
            (
                "external name",
                json!({"spec": {"type": "ExternalName", "externalName": "db.example.com"}}),
                ["ExternalName", "<none>", "db.example.com", "<none>"],
            ),
        ];
        for (what, rest, want) in cases {
            let o = obj("svc", 86400 * 3 + 3600, rest);
            let c = row("", "services", &o);
            let got: Vec<&str> = c[1..5].iter().map(|v| v.as_str().unwrap_or("?")).collect();
            assert_eq!(got, want, "{what}");
            assert_eq!(c[5], json!("3d1h"));
        }
        let o = obj(
            "dns",
            60,
            json!({"spec": {"selector": {"tier": "x", "app": "y"}}}),
        );
        assert_eq!(row("", "services", &o)[6], json!("app=y,tier=x"));
        let o = obj("dns", 60, json!({"spec": {}}));
        assert_eq!(row("", "services", &o)[6], json!("<none>"));
    }

    #[test]
    fn endpoints_and_slices() {
        let o = obj(
            "web",
            60,
            json!({"subsets": [
                {"addresses": [{"ip": "10.0.0.1"}, {"ip": "10.0.0.2"}], "ports": [{"port": 80, "name": "http"}, {"port": 443, "name": "https"}]},
                {"addresses": [{"ip": "fd00::1"}], "ports": [{"port": 80}]}]}),
        );
        assert_eq!(
            row("", "endpoints", &o)[1],
            json!("10.0.0.1:80,10.0.0.2:80,10.0.0.1:443 + 2 more...")
        );
        let small = obj(
            "db",
            60,
            json!({"subsets": [{"addresses": [{"ip": "fd00::1"}], "ports": [{"port": 5432}]}]}),
        );
        assert_eq!(row("", "endpoints", &small)[1], json!("[fd00::1]:5432"));
        let headless = obj(
            "h",
            60,
            json!({"subsets": [{"addresses": [{"ip": "10.0.0.7"}]}]}),
        );
        assert_eq!(row("", "endpoints", &headless)[1], json!("10.0.0.7"));
        let none = obj("n", 60, json!({}));
        assert_eq!(row("", "endpoints", &none)[1], json!("<none>"));

        let slice = obj(
            "web-abc12",
            60,
            json!({"addressType": "IPv4",
              "ports": [{"name": "http", "port": 80, "protocol": "TCP"}, {"name": "named"}, {}, {"port": 9}],
              "endpoints": [{"addresses": ["10.0.0.1"]}, {"addresses": ["10.0.0.2"]}]}),
        );
        let c = row("discovery.k8s.io", "endpointslices", &slice);
        assert_eq!(
            &c[1..4],
            &[
                json!("IPv4"),
                json!("80,named,* + 1 more..."),
                json!("10.0.0.1,10.0.0.2")
            ]
        );
        let empty = obj("e", 60, json!({"addressType": "IPv6"}));
        let c = row("discovery.k8s.io", "endpointslices", &empty);
        assert_eq!(&c[2..4], &[json!("<unset>"), json!("<unset>")]);
    }

    fn template(containers: Value) -> Value {
        json!({"metadata": {"labels": {"app": "web"}}, "spec": {"containers": containers}})
    }

    #[test]
    fn workload_cells() {
        let tpl = template(
            json!([{"name": "nginx", "image": "nginx:1.27"}, {"name": "log", "image": "busybox"}]),
        );
        let dep = obj(
            "web",
            3 * 3600 + 4 * 60,
            json!({"spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web"},
                "matchExpressions": [{"key": "tier", "operator": "In", "values": ["fe", "be"]}, {"key": "canary", "operator": "DoesNotExist"}]},
                "template": tpl},
              "status": {"readyReplicas": 2, "updatedReplicas": 3, "availableReplicas": 2}}),
        );
        assert_eq!(
            row("apps", "deployments", &dep),
            vec![
                json!("web"),
                json!("2/3"),
                json!(3),
                json!(2),
                json!("3h4m"),
                json!("nginx,log"),
                json!("nginx:1.27,busybox"),
                json!("app=web,!canary,tier in (be,fe)")
            ]
        );
        let fresh = obj("new", 5, json!({"spec": {"template": tpl}}));
        let c = row("apps", "deployments", &fresh);
        assert_eq!(c[1], json!("0/1"));
        assert_eq!(c[4], json!("5s"));
        assert_eq!(c[7], json!(""));

        let rs = obj(
            "web-5d8f",
            60,
            json!({"spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web", "pod-template-hash": "5d8f"}}, "template": tpl},
              "status": {"replicas": 2, "readyReplicas": 1}}),
        );
        assert_eq!(
            row("apps", "replicasets", &rs),
            vec![
                json!("web-5d8f"),
                json!(2),
                json!(2),
                json!(1),
                json!("60s"),
                json!("nginx,log"),
                json!("nginx:1.27,busybox"),
                json!("app=web,pod-template-hash=5d8f")
            ]
        );
        let rs_empty_sel = obj("x", 60, json!({"spec": {"replicas": 0, "template": tpl}}));
        assert_eq!(
            row("apps", "replicasets", &rs_empty_sel)[7],
            json!("<none>")
        );
        let bad_sel = obj(
            "x",
            60,
            json!({"spec": {"selector": {"matchExpressions": [{"key": "a", "operator": "Bogus"}]}, "template": tpl}}),
        );
        assert_eq!(row("apps", "replicasets", &bad_sel)[7], json!("<error>"));
        assert_eq!(row("apps", "deployments", &bad_sel)[7], json!("<invalid>"));

        let rc = obj(
            "legacy",
            60,
            json!({"spec": {"replicas": 2, "selector": {"app": "legacy"}, "template": tpl}, "status": {"replicas": 2, "readyReplicas": 2}}),
        );
        assert_eq!(
            row("", "replicationcontrollers", &rc)[1..4],
            [json!(2), json!(2), json!(2)]
        );
        assert_eq!(
            row("", "replicationcontrollers", &rc)[7],
            json!("app=legacy")
        );

        let sts = obj(
            "db",
            86400 * 10,
            json!({"spec": {"replicas": 3, "serviceName": "db", "selector": {"matchLabels": {"app": "db"}}, "template": template(json!([{"name": "pg", "image": "postgres:16"}]))},
              "status": {"replicas": 3, "readyReplicas": 3}}),
        );
        assert_eq!(
            row("apps", "statefulsets", &sts),
            vec![
                json!("db"),
                json!("3/3"),
                json!("10d"),
                json!("pg"),
                json!("postgres:16")
            ]
        );

        let ds = obj(
            "kube-proxy",
            86400 * 400,
            json!({"spec": {"selector": {"matchLabels": {"k8s-app": "kube-proxy"}},
                "template": {"spec": {"nodeSelector": {"kubernetes.io/os": "linux"}, "containers": [{"name": "kube-proxy", "image": "registry.k8s.io/kube-proxy:v1.33.0"}]}}},
              "status": {"desiredNumberScheduled": 3, "currentNumberScheduled": 3, "numberReady": 2, "updatedNumberScheduled": 3, "numberAvailable": 2}}),
        );
        assert_eq!(
            row("apps", "daemonsets", &ds),
            vec![
                json!("kube-proxy"),
                json!(3),
                json!(3),
                json!(2),
                json!(3),
                json!(2),
                json!("kubernetes.io/os=linux"),
                json!("400d"),
                json!("kube-proxy"),
                json!("registry.k8s.io/kube-proxy:v1.33.0"),
                json!("k8s-app=kube-proxy")
            ]
        );

        let cr = obj(
            "web-7c9",
            60,
            json!({"revision": 4, "metadata": {"name": "web-7c9", "creationTimestamp": ago(60),
                "ownerReferences": [{"apiVersion": "apps/v1", "kind": "StatefulSet", "name": "web", "uid": "u", "controller": true}]}}),
        );
        assert_eq!(
            row("apps", "controllerrevisions", &cr),
            vec![
                json!("web-7c9"),
                json!("statefulset.apps/web"),
                json!(4),
                json!("60s")
            ]
        );
        let orphan = obj("x", 60, json!({"revision": 1}));
        assert_eq!(
            row("apps", "controllerrevisions", &orphan)[1],
            json!("<none>")
        );
    }

    #[test]
    fn job_cells_table() {
        let tpl = template(json!([{"name": "pi", "image": "perl"}]));
        let cases: Vec<(&str, Value, [&str; 3])> = vec![
            (
                "running",
                json!({"spec": {"completions": 1, "parallelism": 1, "template": tpl}, "status": {"startTime": ago(95), "active": 1}}),
                ["Running", "0/1", "95s"],
            ),
            (
                "complete",
                json!({"spec": {"completions": 1, "template": tpl},
                  "status": {"startTime": ago(600), "completionTime": ago(600 - 23), "succeeded": 1,
                    "conditions": [{"type": "SuccessCriteriaMet", "status": "True"}, {"type": "Complete", "status": "True"}]}}),
                ["Complete", "1/1", "23s"],
            ),
            (
                "failed",
                json!({"spec": {"completions": 3, "template": tpl},
                  "status": {"startTime": ago(600), "failed": 7, "succeeded": 1,
                    "conditions": [{"type": "FailureTarget", "status": "True"}, {"type": "Failed", "status": "True"}]}}),
                ["Failed", "1/3", "10m"],
            ),
            (
                "failure target only",
                json!({"spec": {"completions": 3, "template": tpl},
                  "status": {"startTime": ago(60), "conditions": [{"type": "FailureTarget", "status": "True"}]}}),
                ["FailureTarget", "0/3", "60s"],
            ),
            (
                "suspended, never started",
                json!({"spec": {"completions": 2, "suspend": true, "template": tpl},
                  "status": {"conditions": [{"type": "Suspended", "status": "True"}]}}),
                ["Suspended", "0/2", ""],
            ),
            (
                "work queue with parallelism",
                json!({"spec": {"parallelism": 4, "template": tpl}, "status": {"startTime": ago(30), "succeeded": 2}}),
                ["Running", "2/1 of 4", "30s"],
            ),
            (
                "no completions, no parallelism",
                json!({"spec": {"template": tpl}}),
                ["Running", "0/1", ""],
            ),
        ];
        for (what, rest, want) in cases {
            let o = obj("pi", 600, rest);
            let c = row("batch", "jobs", &o);
            let got: Vec<&str> = c[1..4].iter().map(|v| v.as_str().unwrap_or("?")).collect();
            assert_eq!(got, want, "{what}");
            assert_eq!(c[4], json!("10m"));
            assert_eq!(&c[5..7], &[json!("pi"), json!("perl")]);
        }
        let mut deleting = obj("pi", 600, json!({"spec": {"template": tpl}}));
        deleting["metadata"]["deletionTimestamp"] = json!(ago(1));
        assert_eq!(row("batch", "jobs", &deleting)[1], json!("Terminating"));
        let sel = obj(
            "pi",
            600,
            json!({"spec": {"template": tpl, "selector": {"matchLabels": {"batch.kubernetes.io/controller-uid": "abc"}}}}),
        );
        assert_eq!(
            row("batch", "jobs", &sel)[7],
            json!("batch.kubernetes.io/controller-uid=abc")
        );
    }

    #[test]
    fn cronjob_cells_table() {
        let job_template = json!({"spec": {"template": template(json!([{"name": "hello", "image": "busybox:1.28"}]))}});
        let o = obj(
            "hello",
            86400 * 2,
            json!({"spec": {"schedule": "*/1 * * * *", "suspend": false, "jobTemplate": job_template},
              "status": {"active": [{"name": "hello-1"}], "lastScheduleTime": ago(42)}}),
        );
        assert_eq!(
            row("batch", "cronjobs", &o),
            vec![
                json!("hello"),
                json!("*/1 * * * *"),
                json!("<none>"),
                json!("False"),
                json!(1),
                json!("42s"),
                json!("2d"),
                json!("hello"),
                json!("busybox:1.28"),
                json!("<none>")
            ]
        );
        let o = obj(
            "nightly",
            60,
            json!({"spec": {"schedule": "0 3 * * *", "timeZone": "Europe/Berlin", "suspend": true, "jobTemplate": job_template}}),
        );
        let c = row("batch", "cronjobs", &o);
        assert_eq!(
            &c[1..6],
            &[
                json!("0 3 * * *"),
                json!("Europe/Berlin"),
                json!("True"),
                json!(0),
                json!("<none>")
            ]
        );
    }

    #[test]
    fn config_and_secret_cells() {
        let cm = obj(
            "cfg",
            60,
            json!({"data": {"a": "1", "b": "2"}, "binaryData": {"c": "AA=="}}),
        );
        assert_eq!(
            row("", "configmaps", &cm),
            vec![json!("cfg"), json!(3), json!("60s")]
        );
        let empty = obj("kube-root-ca.crt", 60, json!({}));
        assert_eq!(row("", "configmaps", &empty)[1], json!(0));

        let sec = obj(
            "tls",
            60,
            json!({"type": "kubernetes.io/tls", "data": {"tls.crt": "", "tls.key": ""}}),
        );
        assert_eq!(
            row("", "secrets", &sec),
            vec![
                json!("tls"),
                json!("kubernetes.io/tls"),
                json!(2),
                json!("60s")
            ]
        );
        let opaque = obj(
            "o",
            60,
            json!({"data": {"a": "eA=="}, "stringData": {"a": "x", "b": "y"}}),
        );
        assert_eq!(
            row("", "secrets", &opaque)[1..3],
            [json!("Opaque"), json!(2)]
        );

        let sa = obj(
            "default",
            60,
            json!({"secrets": [{"name": "default-token"}]}),
        );
        assert_eq!(
            row("", "serviceaccounts", &sa),
            vec![json!("default"), json!(1), json!("60s")]
        );
        let sa0 = obj("builder", 60, json!({}));
        assert_eq!(row("", "serviceaccounts", &sa0)[1], json!(0));
    }

    #[test]
    fn namespace_cells_table() {
        let ns = obj(
            "kube-system",
            86400 * 30,
            json!({"status": {"phase": "Active"}}),
        );
        assert_eq!(
            row("", "namespaces", &ns),
            vec![json!("kube-system"), json!("Active"), json!("30d")]
        );
        let mut term = obj("old", 60, json!({"status": {"phase": "Terminating"}}));
        assert_eq!(row("", "namespaces", &term)[1], json!("Terminating"));
        term["status"] = json!({});
        assert_eq!(row("", "namespaces", &term)[1], json!("Active"));
        term["metadata"]["deletionTimestamp"] = json!(ago(1));
        assert_eq!(row("", "namespaces", &term)[1], json!("Terminating"));
    }

    #[test]
    fn node_cells_table() {
        let node = obj(
            "cp-1",
            86400 * 5,
            json!({"metadata": {"name": "cp-1", "creationTimestamp": ago(86400 * 5),
                "labels": {"node-role.kubernetes.io/control-plane": "", "node-role.kubernetes.io/": "", "kubernetes.io/role": "master", "kubernetes.io/hostname": "cp-1"}},
              "spec": {"unschedulable": true},
              "status": {"conditions": [{"type": "MemoryPressure", "status": "False"}, {"type": "Ready", "status": "True"}],
                "addresses": [{"type": "Hostname", "address": "cp-1"}, {"type": "InternalIP", "address": "192.168.1.10"}],
                "nodeInfo": {"kubeletVersion": "v1.33.1", "osImage": "Ubuntu 24.04 LTS", "kernelVersion": "6.8.0-31-generic", "containerRuntimeVersion": "containerd://1.7.27"}}}),
        );
        assert_eq!(
            row("", "nodes", &node),
            vec![
                json!("cp-1"),
                json!("Ready,SchedulingDisabled"),
                json!("control-plane,master"),
                json!("5d"),
                json!("v1.33.1"),
                json!("192.168.1.10"),
                json!("<none>"),
                json!("Ubuntu 24.04 LTS"),
                json!("6.8.0-31-generic"),
                json!("containerd://1.7.27")
            ]
        );
        let worker = obj(
            "w-1",
            3600,
            json!({"status": {"conditions": [{"type": "Ready", "status": "Unknown"}],
                "addresses": [{"type": "ExternalIP", "address": "203.0.113.1"}]}}),
        );
        let c = row("", "nodes", &worker);
        assert_eq!(
            &c[1..5],
            &[json!("NotReady"), json!("<none>"), json!("60m"), json!("")]
        );
        assert_eq!(
            &c[5..],
            &[
                json!("<none>"),
                json!("203.0.113.1"),
                json!("<unknown>"),
                json!("<unknown>"),
                json!("<unknown>")
            ]
        );
        let bare = obj("n", 60, json!({}));
        assert_eq!(row("", "nodes", &bare)[1], json!("Unknown"));
    }

    #[test]
    fn event_cells_table() {
        let core = obj(
            "web-0.17d",
            600,
            json!({"involvedObject": {"kind": "Pod", "name": "web-0", "namespace": "default", "fieldPath": "spec.containers{app}"},
              "reason": "BackOff", "message": "Back-off restarting failed container\n", "type": "Warning",
              "source": {"component": "kubelet", "host": "node-1"},
              "firstTimestamp": ago(600), "lastTimestamp": ago(5), "count": 12}),
        );
        assert_eq!(
            row("", "events", &core),
            vec![
                json!("5s"),
                json!("Warning"),
                json!("BackOff"),
                json!("pod/web-0"),
                json!("spec.containers{app}"),
                json!("kubelet, node-1"),
                json!("Back-off restarting failed container"),
                json!("10m"),
                json!(12),
                json!("web-0.17d")
            ]
        );
        // New-style event via the core API: eventTime only, reporting fields.
        let micro = obj(
            "x.1",
            60,
            json!({"involvedObject": {"kind": "Node"}, "reason": "RegisteredNode", "type": "Normal", "message": "m",
              "eventTime": "2024-06-01T11:59:00.123456Z", "reportingController": "node-controller", "source": {}}),
        );
        let c = row("", "events", &micro);
        // 59.88s ago truncates to 59s.
        assert_eq!(
            &c[0..6],
            &[
                json!("59s"),
                json!("Normal"),
                json!("RegisteredNode"),
                json!("node"),
                json!(""),
                json!("node-controller")
            ]
        );
        assert_eq!(&c[7..9], &[json!("59s"), json!(1)]);
        // events.k8s.io/v1 shape, with a series.
        let ev = obj(
            "web-0.18a",
            3600,
            json!({"regarding": {"kind": "Deployment", "name": "web", "namespace": "default"},
              "reason": "ScalingReplicaSet", "note": "Scaled up replica set web-5d8f to 3", "type": "Normal",
              "eventTime": "2024-06-01T11:00:00.000000Z", "reportingController": "deployment-controller", "reportingInstance": "kcm-1",
              "series": {"count": 4, "lastObservedTime": "2024-06-01T11:58:00.000000Z"}, "action": "Scale"}),
        );
        assert_eq!(
            row("events.k8s.io", "events", &ev),
            vec![
                json!("2m"),
                json!("Normal"),
                json!("ScalingReplicaSet"),
                json!("deployment/web"),
                json!(""),
                json!("deployment-controller, kcm-1"),
                json!("Scaled up replica set web-5d8f to 3"),
                json!("60m"),
                json!(4),
                json!("web-0.18a")
            ]
        );
        let nothing = obj("e", 60, json!({}));
        let c = row("", "events", &nothing);
        assert_eq!(c[0], json!("<unknown>"));
        assert_eq!(c[7], json!("<unknown>"));
    }

    #[test]
    fn storage_cells() {
        let pv = obj(
            "pvc-123",
            60,
            json!({"metadata": {"name": "pvc-123", "creationTimestamp": ago(60), "annotations": {"volume.beta.kubernetes.io/storage-class": "legacy"}},
              "spec": {"capacity": {"storage": "10Gi"}, "accessModes": ["ReadWriteMany", "ReadWriteOnce", "ReadWriteOnce"],
                "persistentVolumeReclaimPolicy": "Delete", "storageClassName": "standard",
                "claimRef": {"namespace": "default", "name": "data"}, "volumeMode": "Block"},
              "status": {"phase": "Bound"}}),
        );
        assert_eq!(
            row("", "persistentvolumes", &pv),
            vec![
                json!("pvc-123"),
                json!("10Gi"),
                json!("RWO,RWX"),
                json!("Delete"),
                json!("Bound"),
                json!("default/data"),
                json!("legacy"),
                json!("<unset>"),
                json!(""),
                json!("60s"),
                json!("Block")
            ]
        );
        let mut released = obj(
            "pv-2",
            60,
            json!({"spec": {"accessModes": ["ReadOnlyMany", "ReadWriteOncePod"]}, "status": {"phase": "Failed", "reason": "Oops"}}),
        );
        let c = row("", "persistentvolumes", &released);
        assert_eq!(
            &c[1..9],
            &[
                json!("0"),
                json!("ROX,RWOP"),
                json!("Retain"),
                json!("Failed"),
                json!(""),
                json!(""),
                json!("<unset>"),
                json!("Oops")
            ]
        );
        assert_eq!(c[10], json!("Filesystem"));
        released["metadata"]["deletionTimestamp"] = json!(ago(1));
        assert_eq!(
            row("", "persistentvolumes", &released)[4],
            json!("Terminating")
        );

        let bound = obj(
            "data",
            60,
            json!({"spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}},
                "storageClassName": "standard", "volumeName": "pvc-123", "volumeAttributesClassName": "gold"},
              "status": {"phase": "Bound", "accessModes": ["ReadWriteOnce"], "capacity": {"storage": "2Gi"}}}),
        );
        assert_eq!(
            row("", "persistentvolumeclaims", &bound),
            vec![
                json!("data"),
                json!("Bound"),
                json!("pvc-123"),
                json!("2Gi"),
                json!("RWO"),
                json!("standard"),
                json!("gold"),
                json!("60s"),
                json!("Filesystem")
            ]
        );
        let pending = obj(
            "wait",
            60,
            json!({"spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}, "status": {"phase": "Pending"}}),
        );
        let c = row("", "persistentvolumeclaims", &pending);
        assert_eq!(
            &c[1..7],
            &[
                json!("Pending"),
                json!(""),
                json!(""),
                json!(""),
                json!(""),
                json!("<unset>")
            ]
        );

        let sc = obj(
            "standard",
            60,
            json!({"metadata": {"name": "standard", "creationTimestamp": ago(60),
                "annotations": {"storageclass.kubernetes.io/is-default-class": "true"}},
              "provisioner": "rancher.io/local-path", "volumeBindingMode": "WaitForFirstConsumer"}),
        );
        assert_eq!(
            row("storage.k8s.io", "storageclasses", &sc),
            vec![
                json!("standard (default)"),
                json!("rancher.io/local-path"),
                json!("Delete"),
                json!("WaitForFirstConsumer"),
                json!(false),
                json!("60s")
            ]
        );
        let sc2 = obj(
            "fast",
            60,
            json!({"provisioner": "ebs.csi.aws.com", "reclaimPolicy": "Retain", "allowVolumeExpansion": true}),
        );
        assert_eq!(
            row("storage.k8s.io", "storageclasses", &sc2)[..5],
            [
                json!("fast"),
                json!("ebs.csi.aws.com"),
                json!("Retain"),
                json!("Immediate"),
                json!(true)
            ]
        );
    }

    #[test]
    fn quota_and_limits() {
        let rq = obj(
            "compute",
            60,
            json!({"status": {"hard": {"pods": "10", "requests.cpu": "1", "limits.memory": "2Gi", "limits.cpu": "2", "requests.memory": "1Gi"},
              "used": {"pods": "3", "requests.cpu": "500m", "limits.cpu": "1"}}}),
        );
        assert_eq!(
            row("", "resourcequotas", &rq),
            vec![
                json!("compute"),
                json!("pods: 3/10, requests.cpu: 500m/1, requests.memory: 0/1Gi"),
                json!("limits.cpu: 1/2, limits.memory: 0/2Gi"),
                json!("60s")
            ]
        );
        let lr = json!({"metadata": {"name": "limits", "creationTimestamp": "2024-01-02T03:04:05Z"}, "spec": {"limits": []}});
        assert_eq!(
            row("", "limitranges", &lr),
            vec![json!("limits"), json!("2024-01-02T03:04:05Z")]
        );
    }

    #[test]
    fn rbac_cells() {
        let rb = obj(
            "edit-team",
            60,
            json!({"roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "edit"},
              "subjects": [{"kind": "User", "name": "alice"}, {"kind": "Group", "name": "devs"}, {"kind": "User", "name": "bob"},
                {"kind": "ServiceAccount", "name": "ci", "namespace": "tools"}]}),
        );
        assert_eq!(
            row("rbac.authorization.k8s.io", "rolebindings", &rb),
            vec![
                json!("edit-team"),
                json!("ClusterRole/edit"),
                json!("60s"),
                json!("alice, bob"),
                json!("devs"),
                json!("tools/ci")
            ]
        );
        let crb = obj(
            "cluster-admin",
            60,
            json!({"roleRef": {"kind": "ClusterRole", "name": "cluster-admin"},
            "subjects": [{"kind": "Group", "name": "system:masters"}]}),
        );
        assert_eq!(
            row("rbac.authorization.k8s.io", "clusterrolebindings", &crb),
            vec![
                json!("cluster-admin"),
                json!("ClusterRole/cluster-admin"),
                json!("60s"),
                json!(""),
                json!("system:masters"),
                json!("")
            ]
        );
        let role = json!({"metadata": {"name": "r", "creationTimestamp": "2024-05-30T00:00:00Z"}, "rules": []});
        assert_eq!(
            row("rbac.authorization.k8s.io", "clusterroles", &role),
            vec![json!("r"), json!("2024-05-30T00:00:00Z")]
        );
    }

    #[test]
    fn networking_cells() {
        let ing = obj(
            "web",
            60,
            json!({"spec": {"ingressClassName": "nginx",
                "rules": [{"host": "a.example.com"}, {"host": "b.example.com"}, {}, {"host": "c.example.com"}, {"host": "d.example.com"}],
                "tls": [{"hosts": ["a.example.com"], "secretName": "tls"}]},
              "status": {"loadBalancer": {"ingress": [{"ip": "192.168.49.2"}]}}}),
        );
        assert_eq!(
            row("networking.k8s.io", "ingresses", &ing),
            vec![
                json!("web"),
                json!("nginx"),
                json!("a.example.com,b.example.com,c.example.com + 2 more..."),
                json!("192.168.49.2"),
                json!("80, 443"),
                json!("60s")
            ]
        );
        let bare = obj(
            "catch-all",
            60,
            json!({"spec": {"defaultBackend": {"service": {"name": "x", "port": {"number": 80}}}}}),
        );
        assert_eq!(
            row("networking.k8s.io", "ingresses", &bare)[1..5],
            [json!("<none>"), json!("*"), json!(""), json!("80")]
        );
        let three = obj(
            "t",
            60,
            json!({"spec": {"rules": [{"host": "a"}, {"host": "b"}, {"host": "c"}]}}),
        );
        assert_eq!(
            row("networking.k8s.io", "ingresses", &three)[2],
            json!("a,b,c")
        );

        let ic = obj(
            "nginx",
            60,
            json!({"spec": {"controller": "k8s.io/ingress-nginx",
              "parameters": {"apiGroup": "k8s.example.com", "kind": "IngressParameters", "name": "external-lb"}}}),
        );
        assert_eq!(
            row("networking.k8s.io", "ingressclasses", &ic),
            vec![
                json!("nginx"),
                json!("k8s.io/ingress-nginx"),
                json!("IngressParameters.k8s.example.com/external-lb"),
                json!("60s")
            ]
        );
        let ic2 = obj(
            "plain",
            60,
            json!({"spec": {"controller": "example.com/c"}}),
        );
        assert_eq!(
            row("networking.k8s.io", "ingressclasses", &ic2)[2],
            json!("<none>")
        );

        let np = obj(
            "deny-all",
            60,
            json!({"spec": {"podSelector": {}, "policyTypes": ["Ingress"]}}),
        );
        assert_eq!(
            row("networking.k8s.io", "networkpolicies", &np),
            vec![json!("deny-all"), json!("<none>"), json!("60s")]
        );
        let np2 = obj(
            "allow",
            60,
            json!({"spec": {"podSelector": {"matchLabels": {"role": "db"}}}}),
        );
        assert_eq!(
            row("networking.k8s.io", "networkpolicies", &np2)[1],
            json!("role=db")
        );
    }

    #[test]
    fn misc_cells() {
        let pdb = obj(
            "web-pdb",
            60,
            json!({"spec": {"minAvailable": 2}, "status": {"disruptionsAllowed": 1}}),
        );
        assert_eq!(
            row("policy", "poddisruptionbudgets", &pdb),
            vec![
                json!("web-pdb"),
                json!("2"),
                json!("N/A"),
                json!(1),
                json!("60s")
            ]
        );
        let pdb2 = obj("p2", 60, json!({"spec": {"maxUnavailable": "25%"}}));
        assert_eq!(
            row("policy", "poddisruptionbudgets", &pdb2)[1..4],
            [json!("N/A"), json!("25%"), json!(0)]
        );

        let lease = obj(
            "kube-controller-manager",
            60,
            json!({"spec": {"holderIdentity": "cp-1_abc", "leaseDurationSeconds": 15}}),
        );
        assert_eq!(
            row("coordination.k8s.io", "leases", &lease),
            vec![
                json!("kube-controller-manager"),
                json!("cp-1_abc"),
                json!("60s")
            ]
        );
        let free = obj("l", 60, json!({"spec": {}}));
        assert_eq!(row("coordination.k8s.io", "leases", &free)[1], json!(""));

        let pc = obj(
            "system-cluster-critical",
            60,
            json!({"value": 2000000000, "globalDefault": false, "preemptionPolicy": "PreemptLowerPriority"}),
        );
        assert_eq!(
            row("scheduling.k8s.io", "priorityclasses", &pc),
            vec![
                json!("system-cluster-critical"),
                json!(2000000000),
                json!(false),
                json!("60s"),
                json!("PreemptLowerPriority")
            ]
        );
        let pc2 = obj(
            "batch",
            60,
            json!({"value": -5, "globalDefault": true, "preemptionPolicy": "Never"}),
        );
        assert_eq!(
            row("scheduling.k8s.io", "priorityclasses", &pc2)[1..5],
            [json!(-5), json!(true), json!("60s"), json!("Never")]
        );
    }

    #[test]
    fn hpa_cells_table() {
        let base = json!({"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"}, "minReplicas": 2, "maxReplicas": 10});
        let cases: Vec<(&str, Value, Value, &str)> = vec![
            (
                "cpu utilization, unknown current",
                json!([{"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 80}}}]),
                json!({}),
                "cpu: <unknown>/80%",
            ),
            (
                "cpu and memory with current",
                json!([
                    {"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 50}}},
                    {"type": "Resource", "resource": {"name": "memory", "target": {"type": "AverageValue", "averageValue": "500Mi"}}}]),
                json!({"currentMetrics": [
                    {"type": "Resource", "resource": {"name": "cpu", "current": {"averageUtilization": 23, "averageValue": "115m"}}},
                    {"type": "Resource", "resource": {"name": "memory", "current": {"averageValue": "200Mi"}}}]}),
                "cpu: 23%/50%, memory: 200Mi/500Mi",
            ),
            (
                "more than two",
                json!([
                    {"type": "Pods", "pods": {"metric": {"name": "qps"}, "target": {"type": "AverageValue", "averageValue": "1k"}}},
                    {"type": "Object", "object": {"metric": {"name": "hits"}, "target": {"type": "Value", "value": "10"}}},
                    {"type": "External", "external": {"metric": {"name": "queue"}, "target": {"type": "AverageValue", "averageValue": "30"}}}]),
                json!({"currentMetrics": [{"type": "Pods", "pods": {"current": {"averageValue": "250"}}}]}),
                "250/1k, <unknown>/10 + 1 more...",
            ),
            (
                "external value and container resource",
                json!([
                    {"type": "External", "external": {"metric": {"name": "queue"}, "target": {"type": "Value", "value": "30"}}},
                    {"type": "ContainerResource", "containerResource": {"name": "cpu", "container": "app", "target": {"type": "Utilization"}}}]),
                json!({"currentMetrics": [{"type": "External", "external": {"current": {"value": "12"}}}]}),
                "12/30, cpu: <unknown>/<auto>",
            ),
            ("no metrics", json!([]), json!({}), "<none>"),
        ];
        for (what, metrics, status, want) in cases {
            let mut spec = base.clone();
            spec["metrics"] = metrics;
            let o = obj(
                "web",
                60,
                json!({"spec": spec, "status": with(json!({"currentReplicas": 3}), status)}),
            );
            let c = row("autoscaling", "horizontalpodautoscalers", &o);
            assert_eq!(c[2], json!(want), "{what}");
            assert_eq!(&c[0..2], &[json!("web"), json!("Deployment/web")]);
            assert_eq!(&c[3..], &[json!("2"), json!(10), json!(3), json!("60s")]);
        }
        let v1 = obj(
            "old",
            60,
            json!({"spec": {"scaleTargetRef": {"kind": "Deployment", "name": "old"}, "maxReplicas": 5, "targetCPUUtilizationPercentage": 70},
              "status": {"currentReplicas": 1, "currentCPUUtilizationPercentage": 12}}),
        );
        let c = row("autoscaling", "horizontalpodautoscalers", &v1);
        assert_eq!(&c[2..5], &[json!("cpu: 12%/70%"), json!("1"), json!(5)]);
    }

    #[test]
    fn label_selector_formatting() {
        assert_eq!(selector_string(None), Ok(String::new()));
        assert_eq!(selector_string(Some(&json!({}))), Ok(String::new()));
        assert_eq!(
            selector_string(Some(&json!({"matchExpressions": [
                {"key": "env", "operator": "NotIn", "values": ["prod", "dev"]},
                {"key": "app", "operator": "Exists"}]}))),
            Ok("app,env notin (dev,prod)".to_string())
        );
        assert_eq!(format_labels(None), "<none>");
    }
}
