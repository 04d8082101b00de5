//! The registry of kinds the API serves: group, version, kind, plural and singular names,
//! scope, short names, categories, verbs, subresources and per-kind behaviour flags.
//!
//! Invariant: this module knows nothing about HTTP; the API layer asks it what a path means.

pub mod crd;
pub mod defaults;
pub mod schema;
pub mod service_account_admission;
pub mod validation;

use std::sync::{Arc, RwLock};

/// The verbs of an ordinary resource.
pub const STANDARD_VERBS: &[&str] = &[
    "create",
    "delete",
    "deletecollection",
    "get",
    "list",
    "patch",
    "update",
    "watch",
];
/// The verbs of a create-only review resource.
pub const CREATE_ONLY: &[&str] = &["create"];

/// One kind as served.
#[derive(Debug, Clone)]
pub struct ResourceDef {
    /// API group ("" = core).
    pub group: String,
    /// Version.
    pub version: String,
    /// Kind.
    pub kind: String,
    /// Plural (the URL segment).
    pub plural: String,
    /// Singular name.
    pub singular: String,
    /// Namespaced or cluster-scoped.
    pub namespaced: bool,
    /// Short names (`po`, `deploy`).
    pub short_names: Vec<String>,
    /// Categories (`all`).
    pub categories: Vec<String>,
    /// Verbs.
    pub verbs: Vec<String>,
    /// Has a `status` subresource: main-resource writes keep status, status writes keep the rest.
    pub has_status: bool,
    /// `metadata.generation` is tracked (set to 1, bumped when anything but metadata and
    /// status changes).
    pub tracks_generation: bool,
    /// Objects are not stored: a create is answered and forgotten (reviews).
    pub virtual_only: bool,
    /// Has a `scale` subresource (autoscaling/v1 Scale over `spec.replicas`).
    pub has_scale: bool,
    /// For a kind served from a CustomResourceDefinition: what the CRD says about it.
    pub custom: Option<Arc<CustomKind>>,
}

/// A kind served from a CustomResourceDefinition (one served version of it).
#[derive(Debug, Clone)]
pub struct CustomKind {
    /// The CRD's name (`<plural>.<group>`).
    pub crd_name: String,
    /// `spec.names.listKind`.
    pub list_kind: String,
    /// The version as the CRD describes it (schema, subresources, printer columns).
    pub version: crd::CrdVersionInfo,
}

impl ResourceDef {
    /// `v1` or `apps/v1`.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.clone()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// The store's key for this resource: `configmaps`, `deployments.apps`.
    pub fn storage_resource(&self) -> String {
        if self.group.is_empty() {
            self.plural.clone()
        } else {
            format!("{}.{}", self.plural, self.group)
        }
    }

    /// How error messages name the resource: `configmaps`, `deployments.apps`.
    pub fn qualified_plural(&self) -> String {
        self.storage_resource()
    }

    /// A stored object's JSON as this version serves it. Objects of a custom resource keep
    /// the apiVersion they were written with, and every served version of a CRD (conversion
    /// `None`) shares one store key, so a read through another version gets its apiVersion
    /// rewritten, as kube-apiserver's no-op converter does. Built-in kinds are returned as
    /// stored.
    pub fn served_json<'a>(&self, json: &'a [u8]) -> std::borrow::Cow<'a, [u8]> {
        use std::borrow::Cow;
        if self.custom.is_none() {
            return Cow::Borrowed(json);
        }
        let needle = format!("\"apiVersion\":\"{}\"", self.api_version());
        if memchr::memmem::find(json, needle.as_bytes()).is_some() {
            return Cow::Borrowed(json);
        }
        match serde_json::from_slice::<serde_json::Value>(json) {
            Ok(mut v) => {
                self.set_served_version(&mut v);
                serde_json::to_vec(&v).map_or(Cow::Borrowed(json), Cow::Owned)
            }
            Err(_) => Cow::Borrowed(json),
        }
    }

    /// [`ResourceDef::served_json`] for a parsed object.
    pub fn set_served_version(&self, v: &mut serde_json::Value) {
        if self.custom.is_some()
            && let Some(o) = v.as_object_mut()
        {
            o.insert("apiVersion".into(), self.api_version().into());
        }
    }

    /// Whether `verb` is served.
    pub fn allows(&self, verb: &str) -> bool {
        self.verbs.iter().any(|v| v == verb)
    }
}

/// (group, version, kind, plural, namespaced, short names, categories, status, generation)
type Row = (
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    bool,
    &'static [&'static str],
    &'static [&'static str],
    bool,
    bool,
);

const ALL: &[&str] = &["all"];
const NONE: &[&str] = &[];

#[rustfmt::skip]
const BUILTINS: &[Row] = &[
    ("", "v1", "Namespace", "namespaces", false, &["ns"], NONE, true, false),
    ("", "v1", "Pod", "pods", true, &["po"], ALL, true, false),
    ("", "v1", "Service", "services", true, &["svc"], ALL, true, false),
    ("", "v1", "Endpoints", "endpoints", true, &["ep"], NONE, false, false),
    ("", "v1", "ConfigMap", "configmaps", true, &["cm"], NONE, false, false),
    ("", "v1", "Secret", "secrets", true, NONE, NONE, false, false),
    ("", "v1", "ServiceAccount", "serviceaccounts", true, &["sa"], NONE, false, false),
    ("", "v1", "Event", "events", true, &["ev"], NONE, false, false),
    ("", "v1", "Node", "nodes", false, &["no"], NONE, true, false),
    ("", "v1", "PersistentVolumeClaim", "persistentvolumeclaims", true, &["pvc"], NONE, true, false),
    ("", "v1", "PersistentVolume", "persistentvolumes", false, &["pv"], NONE, true, false),
    ("", "v1", "LimitRange", "limitranges", true, &["limits"], NONE, false, false),
    ("", "v1", "ResourceQuota", "resourcequotas", true, &["quota"], NONE, true, false),
    ("", "v1", "ReplicationController", "replicationcontrollers", true, &["rc"], ALL, true, true),
    ("apps", "v1", "Deployment", "deployments", true, &["deploy"], ALL, true, true),
    ("apps", "v1", "ReplicaSet", "replicasets", true, &["rs"], ALL, true, true),
    ("apps", "v1", "StatefulSet", "statefulsets", true, &["sts"], ALL, true, true),
    ("apps", "v1", "DaemonSet", "daemonsets", true, &["ds"], ALL, true, true),
    ("apps", "v1", "ControllerRevision", "controllerrevisions", true, NONE, NONE, false, false),
    ("batch", "v1", "Job", "jobs", true, NONE, ALL, true, true),
    ("batch", "v1", "CronJob", "cronjobs", true, &["cj"], ALL, true, true),
    ("rbac.authorization.k8s.io", "v1", "Role", "roles", true, NONE, NONE, false, false),
    ("rbac.authorization.k8s.io", "v1", "RoleBinding", "rolebindings", true, NONE, NONE, false, false),
    ("rbac.authorization.k8s.io", "v1", "ClusterRole", "clusterroles", false, NONE, NONE, false, false),
    ("rbac.authorization.k8s.io", "v1", "ClusterRoleBinding", "clusterrolebindings", false, NONE, NONE, false, false),
    ("coordination.k8s.io", "v1", "Lease", "leases", true, NONE, NONE, false, false),
    ("events.k8s.io", "v1", "Event", "events", true, &["ev"], NONE, false, false),
    ("discovery.k8s.io", "v1", "EndpointSlice", "endpointslices", true, NONE, NONE, false, false),
    ("networking.k8s.io", "v1", "Ingress", "ingresses", true, &["ing"], NONE, true, true),
    ("networking.k8s.io", "v1", "IngressClass", "ingressclasses", false, NONE, NONE, false, false),
    ("networking.k8s.io", "v1", "NetworkPolicy", "networkpolicies", true, &["netpol"], NONE, false, true),
    ("policy", "v1", "PodDisruptionBudget", "poddisruptionbudgets", true, &["pdb"], NONE, true, true),
    ("storage.k8s.io", "v1", "StorageClass", "storageclasses", false, &["sc"], NONE, false, false),
    ("scheduling.k8s.io", "v1", "PriorityClass", "priorityclasses", false, &["pc"], NONE, false, false),
    ("autoscaling", "v2", "HorizontalPodAutoscaler", "horizontalpodautoscalers", true, &["hpa"], ALL, true, true),
    ("apiextensions.k8s.io", "v1", "CustomResourceDefinition", "customresourcedefinitions", false, &["crd", "crds"], NONE, true, true),
];

/// Review kinds: create-only, never stored.
#[rustfmt::skip]
const REVIEWS: &[(&str, &str, &str, &str, bool)] = &[
    ("authorization.k8s.io", "v1", "SelfSubjectAccessReview", "selfsubjectaccessreviews", false),
    ("authorization.k8s.io", "v1", "SelfSubjectRulesReview", "selfsubjectrulesreviews", false),
    ("authorization.k8s.io", "v1", "SubjectAccessReview", "subjectaccessreviews", false),
    ("authorization.k8s.io", "v1", "LocalSubjectAccessReview", "localsubjectaccessreviews", true),
    ("authentication.k8s.io", "v1", "SelfSubjectReview", "selfsubjectreviews", false),
    ("authentication.k8s.io", "v1", "TokenReview", "tokenreviews", false),
];

/// The order groups appear in discovery (kube-apiserver's priority order, roughly).
const GROUP_ORDER: &[&str] = &[
    "",
    "apps",
    "events.k8s.io",
    "authentication.k8s.io",
    "authorization.k8s.io",
    "autoscaling",
    "batch",
    "networking.k8s.io",
    "policy",
    "rbac.authorization.k8s.io",
    "storage.k8s.io",
    "scheduling.k8s.io",
    "coordination.k8s.io",
    "discovery.k8s.io",
    "apiextensions.k8s.io",
];

/// All served kinds.
/// All served kinds: the built-ins, and the kinds CustomResourceDefinitions add (swapped as a
/// whole when CRDs change, so a reader always sees one consistent set).
pub struct Registry {
    builtin: Vec<Arc<ResourceDef>>,
    custom: RwLock<Arc<Vec<Arc<ResourceDef>>>>,
}

impl Registry {
    /// The built-in kinds.
    pub fn builtin() -> Registry {
        let owned = |xs: &[&str]| xs.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let mut defs = Vec::new();
        for &(group, version, kind, plural, namespaced, short, cats, has_status, generation) in
            BUILTINS
        {
            defs.push(Arc::new(ResourceDef {
                group: group.into(),
                version: version.into(),
                kind: kind.into(),
                plural: plural.into(),
                singular: kind.to_lowercase(),
                namespaced,
                short_names: owned(short),
                categories: owned(cats),
                verbs: owned(STANDARD_VERBS),
                has_status,
                tracks_generation: generation,
                virtual_only: false,
                has_scale: matches!(
                    (group, plural),
                    ("apps", "deployments" | "replicasets" | "statefulsets")
                        | ("", "replicationcontrollers")
                ),
                custom: None,
            }));
        }
        for &(group, version, kind, plural, namespaced) in REVIEWS {
            defs.push(Arc::new(ResourceDef {
                group: group.into(),
                version: version.into(),
                kind: kind.into(),
                plural: plural.into(),
                singular: kind.to_lowercase(),
                namespaced,
                short_names: vec![],
                categories: vec![],
                verbs: owned(CREATE_ONLY),
                has_status: false,
                tracks_generation: false,
                virtual_only: true,
                has_scale: false,
                custom: None,
            }));
        }
        Registry {
            builtin: defs,
            custom: RwLock::new(Arc::new(Vec::new())),
        }
    }

    /// The served kinds of the given CRDs (versions colliding with a built-in are skipped;
    /// the CRD's status says why).
    pub fn custom_defs(&self, crds: &[crd::CrdInfo]) -> Vec<Arc<ResourceDef>> {
        let mut out = Vec::new();
        for info in crds {
            for v in info.versions.iter().filter(|v| v.served) {
                let builtin = self.builtin.iter().any(|d| {
                    d.group == info.group && d.version == v.name && d.plural == info.names.plural
                });
                if builtin {
                    continue;
                }
                out.push(Arc::new(ResourceDef {
                    group: info.group.clone(),
                    version: v.name.clone(),
                    kind: info.names.kind.clone(),
                    plural: info.names.plural.clone(),
                    singular: info.names.singular.clone(),
                    namespaced: info.namespaced,
                    short_names: info.names.short_names.clone(),
                    categories: info.names.categories.clone(),
                    verbs: STANDARD_VERBS.iter().map(|s| s.to_string()).collect(),
                    has_status: v.status_subresource,
                    tracks_generation: true,
                    virtual_only: false,
                    has_scale: v.scale.is_some(),
                    custom: Some(Arc::new(CustomKind {
                        crd_name: info.name.clone(),
                        list_kind: info.names.list_kind.clone(),
                        version: v.clone(),
                    })),
                }));
            }
        }
        out
    }

    /// Every stored kind once (the first served version of each storage resource).
    pub fn stored(&self) -> Vec<Arc<ResourceDef>> {
        let mut seen = std::collections::HashSet::new();
        self.all()
            .into_iter()
            .filter(|d| !d.virtual_only && seen.insert(d.storage_resource()))
            .collect()
    }

    /// Replaces the custom kinds.
    pub fn set_custom(&self, defs: Vec<Arc<ResourceDef>>) {
        let mut custom = self
            .custom
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        *custom = Arc::new(defs);
    }

    fn custom(&self) -> Arc<Vec<Arc<ResourceDef>>> {
        self.custom
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Every kind, built-ins first.
    pub fn all(&self) -> Vec<Arc<ResourceDef>> {
        let mut out = self.builtin.clone();
        out.extend(self.custom().iter().cloned());
        out
    }

    /// The kind served at `group/version/plural`.
    pub fn lookup(&self, group: &str, version: &str, plural: &str) -> Option<Arc<ResourceDef>> {
        let hit =
            |d: &&Arc<ResourceDef>| d.group == group && d.version == version && d.plural == plural;
        self.builtin
            .iter()
            .find(hit)
            .cloned()
            .or_else(|| self.custom().iter().find(hit).cloned())
    }

    /// The kind for `apiVersion` + `kind`.
    pub fn by_kind(&self, api_version: &str, kind: &str) -> Option<Arc<ResourceDef>> {
        self.all()
            .into_iter()
            .find(|d| d.kind == kind && d.api_version() == api_version)
    }

    /// Served groups in discovery order, each with its versions (preferred first).
    pub fn groups(&self) -> Vec<(String, Vec<String>)> {
        let mut groups: Vec<(String, Vec<String>)> = Vec::new();
        for d in &self.all() {
            match groups.iter_mut().find(|(g, _)| *g == d.group) {
                Some((_, versions)) => {
                    if !versions.contains(&d.version) {
                        versions.push(d.version.clone());
                    }
                }
                None => groups.push((d.group.clone(), vec![d.version.clone()])),
            }
        }
        let rank = |g: &str| {
            GROUP_ORDER
                .iter()
                .position(|x| *x == g)
                .unwrap_or(GROUP_ORDER.len())
        };
        groups.sort_by_key(|(g, _)| rank(g));
        groups
    }

    /// The kinds of one group-version.
    pub fn in_group_version(&self, group: &str, version: &str) -> Vec<Arc<ResourceDef>> {
        self.all()
            .into_iter()
            .filter(|d| d.group == group && d.version == version)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookups_find_builtins() {
        let r = Registry::builtin();
        let d = r.lookup("apps", "v1", "deployments").expect("deployments");
        assert_eq!(d.kind, "Deployment");
        assert_eq!(d.storage_resource(), "deployments.apps");
        assert_eq!(d.api_version(), "apps/v1");
        assert!(d.categories.contains(&"all".to_string()));
        let cm = r.by_kind("v1", "ConfigMap").expect("configmaps");
        assert_eq!(cm.storage_resource(), "configmaps");
        assert!(r.lookup("", "v1", "nothings").is_none());
        let ssar = r
            .lookup("authorization.k8s.io", "v1", "selfsubjectaccessreviews")
            .expect("ssar");
        assert!(ssar.allows("create") && !ssar.allows("list"));
        assert_eq!(r.groups()[0].0, "");
        assert_eq!(r.groups()[1].0, "apps");
    }
}
