//! Name and object translation between the virtual cluster and one physical
//! cluster's target namespace: the pure core of the syncer (no I/O).
//!
//! # Rules
//!
//! * **Names.** Virtual `ns/name` becomes `<name>-x-<ns>-x-<vcluster-id>` in
//!   the target namespace ([`physical_name`]). That short form is used only
//!   when it is a DNS-1123 label of at most 63 characters *and* parses back
//!   unambiguously (no `-x-` inside a part, name not ending in `-x`, namespace
//!   not starting with `x-`, …). Otherwise the name is the first 52 characters
//!   of the short form (dots and other non-label characters turned into `-`,
//!   trailing `-` trimmed) + `-` + the first 10 hex digits of SHA-256 over
//!   `name NUL ns NUL id`. Hashing the NUL-separated triple rather than the
//!   joined string keeps `("a-x-b","c")` and `("a","b-x-c")` apart. Every
//!   result is a valid DNS-1123 label (and a DNS-1035 label when the virtual
//!   name starts with a letter, as Service names must).
//! * **Back-pointers.** Every physical object carries the annotations
//!   `vkube.io/name`, `vkube.io/namespace`, `vkube.io/uid`, `vkube.io/vcluster`
//!   and the labels `vkube.io/managed-by=<id>` (selected by the syncer's watch
//!   and orphan sweep) and `vkube.io/namespace=<virtual ns>`. Virtual labels and
//!   annotations are copied first, except virtual `vkube.io/*` annotations
//!   (such as `vkube.io/physical-node`, written by up-sync); the vkube keys win. [`virtual_key`] reads them
//!   back. The syncer must check them before it updates or deletes a physical
//!   object, because the name alone does not prove ownership.
//! * **Metadata** is rebuilt from name, namespace, labels and annotations only:
//!   uid, resourceVersion, generation, ownerReferences, finalizers, managedFields,
//!   timestamps and generateName never reach the physical cluster. Status is dropped.
//! * **Pods** ([`translate_pod`]):
//!   - dropped: `nodeName` (the physical scheduler picks a node); `nodeSelector`,
//!     `affinity` and `topologySpreadConstraints` (they name virtual nodes); the
//!     service account, because the physical namespace's default SA is used with
//!     `automountServiceAccountToken: false`; `priorityClassName` and the
//!     `priority`, `preemptionPolicy` and `overhead` fields derived from it or from
//!     RuntimeClass, because physical admission rejects precomputed values;
//!   - kept: tolerations;
//!   - references to namespaced objects are renamed. These are configMap, secret,
//!     PVC and CSI `nodePublishSecretRef` volumes, projected configMap/secret
//!     sources, `env[].valueFrom.{configMap,secret}KeyRef`,
//!     `envFrom[].{configMap,secret}Ref` in containers, initContainers and
//!     ephemeralContainers, and `imagePullSecrets`. [`referenced_objects`] lists
//!     the same references, so the syncer copies only what pods use;
//!   - the service-account token volume (a projected volume with a
//!     `serviceAccountToken` source, which is what SA admission injects as
//!     `kube-api-access-*`) reads the physical Secret `token_secret` (the pod's
//!     token under [`token_key`], `ca.crt`, `namespace`) under the same volume
//!     name. When all its sources are token/`kube-root-ca.crt`/`metadata.namespace`
//!     sources it becomes a `secret` volume; otherwise only those sources become
//!     secret sources.
//!     Without a token Secret the volume and its volumeMounts are removed;
//!   - every container gets `KUBERNETES_SERVICE_HOST`/`_PORT`/`_PORT_HTTPS`,
//!     `KUBERNETES_PORT` and `KUBERNETES_PORT_443_TCP*` pointing at vkube. They
//!     are placed first, so `$(VAR)` references resolve. Explicit env overrides
//!     the kubelet's service env. A variable the container already defines is
//!     left alone. `enableServiceLinks: false` keeps physical Services out of the
//!     environment;
//!   - env `fieldRef`s to `metadata.name`, `metadata.namespace`, `metadata.uid`
//!     and `spec.serviceAccountName` are inlined with the virtual values;
//!   - `hostname` defaults to the virtual pod name when that is a DNS label;
//!   - when the virtual cluster runs a DNS (`kube-system/kube-dns`, reachable at
//!     its physical ClusterIP, [`Target::dns`]), pods with `ClusterFirst` DNS get
//!     `dnsPolicy: None` and a `dnsConfig` naming it, with the virtual
//!     namespace's search path (their own `dnsConfig` entries after it).
//! * **Secrets** keep their type, except `kubernetes.io/service-account-token`,
//!   which becomes `Opaque`. **PVCs** lose `volumeName` and the binding and
//!   provisioning annotations of the virtual side. A PVC `dataSource(Ref)` naming
//!   another PVC is renamed. **Services** lose clusterIP(s) (except headless
//!   `None`), ipFamilies, nodePorts and healthCheckNodePort; a non-empty
//!   selector gets the two managed labels added.
//! * **Up-sync.** [`virtual_pod_status`] takes the physical pod's observable
//!   status (physical pod and host IPs included). Conditions are merged: the
//!   physical ones, plus virtual ones of types the physical pod lacks.
//! * **Updates.** [`metadata_patch`] keeps a physical pod's labels those of its
//!   virtual pod (plus the managed ones) and its annotations at least theirs.

use ring::digest;
use serde_json::{Map, Value, json};

use crate::controllers::replicaset::meta;

/// Label on a Secret the syncer writes for pods' ServiceAccount tokens, valued
/// [`KIND_POD_TOKENS`] (it is written for no single virtual object).
pub const LABEL_KIND: &str = "vkube.io/kind";
pub const KIND_POD_TOKENS: &str = "service-account-token";
pub const ANN_NAME: &str = "vkube.io/name";
pub const ANN_NAMESPACE: &str = "vkube.io/namespace";
pub const ANN_UID: &str = "vkube.io/uid";
pub const ANN_VCLUSTER: &str = "vkube.io/vcluster";
pub const ANN_PHYSICAL_NODE: &str = "vkube.io/physical-node";
pub const LABEL_MANAGED_BY: &str = "vkube.io/managed-by";
pub const LABEL_NAMESPACE: &str = "vkube.io/namespace";

const MAX_NAME: usize = 63;
const HASH_PREFIX: usize = 52;
const HASH_HEX: usize = 10;

/// Where one syncer writes: a vcluster id, the physical target namespace, the
/// address vkube advertises to pods as their API server, and the virtual
/// cluster's DNS server as seen from this physical cluster (if one runs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub vcluster_id: String,
    pub namespace: String,
    pub api_host: String,
    pub api_port: u16,
    /// The physical ClusterIP of the virtual `kube-system/kube-dns` Service.
    pub dns: Option<String>,
}

/// The cluster domain of virtual clusters (search paths of pods using the virtual DNS).
pub const CLUSTER_DOMAIN: &str = "cluster.local";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TranslateError {
    #[error("virtual {kind} is not a JSON object; pass the object as stored")]
    NotAnObject { kind: &'static str },
    #[error(
        "virtual {kind} has no {field}; only stored objects (with name, namespace and uid) can be synced"
    )]
    MissingField {
        kind: &'static str,
        field: &'static str,
    },
}

/// Kinds of namespaced objects a pod can reference.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum RefKind {
    ConfigMap,
    Secret,
    PersistentVolumeClaim,
}

impl RefKind {
    /// The resource (plural) objects of this kind are stored under.
    pub fn resource(self) -> &'static str {
        match self {
            RefKind::ConfigMap => "configmaps",
            RefKind::Secret => "secrets",
            RefKind::PersistentVolumeClaim => "persistentvolumeclaims",
        }
    }
}

/// The physical name of virtual `namespace/name` (see the module rules).
pub fn physical_name(name: &str, namespace: &str, vcluster_id: &str) -> String {
    let full = format!("{name}-x-{namespace}-x-{vcluster_id}");
    let unambiguous = [name, namespace, vcluster_id]
        .iter()
        .all(|p| !p.contains("-x-"))
        && !name.ends_with("-x")
        && !namespace.starts_with("x-")
        && !namespace.ends_with("-x")
        && !vcluster_id.starts_with("x-");
    if unambiguous && is_dns_label(&full) {
        return full;
    }
    let mut ctx = digest::Context::new(&digest::SHA256);
    for (i, part) in [name, namespace, vcluster_id].iter().enumerate() {
        if i > 0 {
            ctx.update(&[0]);
        }
        ctx.update(part.as_bytes());
    }
    let digest = ctx.finish();
    let hash: String = digest.as_ref()[..HASH_HEX / 2]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let prefix: String = full
        .chars()
        .take(HASH_PREFIX)
        .map(|c| match c.to_ascii_lowercase() {
            c @ ('a'..='z' | '0'..='9') => c,
            _ => '-',
        })
        .collect();
    let prefix = prefix.trim_matches('-');
    if prefix.is_empty() {
        hash
    } else {
        format!("{prefix}-{hash}")
    }
}

fn is_dns_label(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= MAX_NAME
        && b.iter()
            .all(|c| matches!(c, b'a'..=b'z' | b'0'..=b'9' | b'-'))
        && b[0] != b'-'
        && b[b.len() - 1] != b'-'
}

/// The identity of a virtual object.
struct Identity<'a> {
    kind: &'static str,
    name: &'a str,
    namespace: &'a str,
    uid: &'a str,
}

fn identity<'a>(v: &'a Value, kind: &'static str) -> Result<Identity<'a>, TranslateError> {
    if !v.is_object() {
        return Err(TranslateError::NotAnObject { kind });
    }
    let field = |key: &str, field: &'static str| {
        let value = v
            .pointer(&format!("/metadata/{key}"))
            .and_then(Value::as_str);
        value
            .filter(|s| !s.is_empty())
            .ok_or(TranslateError::MissingField { kind, field })
    };
    Ok(Identity {
        kind,
        name: field("name", "metadata.name")?,
        namespace: field("namespace", "metadata.namespace")?,
        uid: field("uid", "metadata.uid")?,
    })
}

/// Labels every physical object carries.
pub fn managed_labels(virtual_namespace: &str, vcluster_id: &str) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert(LABEL_MANAGED_BY.into(), vcluster_id.into());
    m.insert(LABEL_NAMESPACE.into(), virtual_namespace.into());
    m
}

fn string_map(v: &Value, key: &str) -> Map<String, Value> {
    v.pointer(&format!("/metadata/{key}"))
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default()
}

/// The labels of `v`'s physical copy: its own and the managed ones.
fn physical_labels(v: &Value, target: &Target) -> Map<String, Value> {
    let mut labels = string_map(v, "labels");
    labels.extend(managed_labels(meta(v, "namespace"), &target.vcluster_id));
    labels
}

/// The annotations of `v`'s physical copy: its own but `vkube.io/` ones, and those naming
/// the virtual object.
fn physical_annotations(v: &Value, target: &Target) -> Map<String, Value> {
    let mut annotations = string_map(v, "annotations");
    annotations.retain(|k, _| !k.starts_with("vkube.io/"));
    for (k, val) in [
        (ANN_NAME, meta(v, "name")),
        (ANN_NAMESPACE, meta(v, "namespace")),
        (ANN_UID, meta(v, "uid")),
        (ANN_VCLUSTER, target.vcluster_id.as_str()),
    ] {
        annotations.insert(k.into(), val.into());
    }
    annotations
}

fn physical_object(v: &Value, id: &Identity, target: &Target) -> Map<String, Value> {
    let labels = physical_labels(v, target);
    let annotations = physical_annotations(v, target);
    let mut obj = Map::new();
    obj.insert(
        "apiVersion".into(),
        v.get("apiVersion").cloned().unwrap_or_else(|| "v1".into()),
    );
    obj.insert("kind".into(), id.kind.into());
    obj.insert(
        "metadata".into(),
        json!({
            "name": physical_name(id.name, id.namespace, &target.vcluster_id),
            "namespace": target.namespace,
            "labels": labels,
            "annotations": annotations,
        }),
    );
    obj
}

/// Maps a physical object back to its virtual `(namespace, name, uid)`;
/// `None` when it was not written for `vcluster_id`.
pub fn virtual_key<'a>(pobj: &'a Value, vcluster_id: &str) -> Option<(&'a str, &'a str, &'a str)> {
    let ann = pobj.pointer("/metadata/annotations")?;
    let get = |k: &str| ann.get(k).and_then(Value::as_str).filter(|s| !s.is_empty());
    if get(ANN_VCLUSTER)? != vcluster_id {
        return None;
    }
    Some((get(ANN_NAMESPACE)?, get(ANN_NAME)?, get(ANN_UID)?))
}

// ---------------------------------------------------------------- pods

const DROPPED_POD_SPEC: &[&str] = &[
    "nodeName",
    "serviceAccountName",
    "serviceAccount",
    "priorityClassName",
    "priority",
    "preemptionPolicy",
    "overhead",
    "nodeSelector",
    "affinity",
    "topologySpreadConstraints",
];
const CONTAINER_LISTS: &[&str] = &["containers", "initContainers", "ephemeralContainers"];
const VOLUME_REFS: &[(&[&str], RefKind)] = &[
    (&["configMap", "name"], RefKind::ConfigMap),
    (&["secret", "secretName"], RefKind::Secret),
    (
        &["persistentVolumeClaim", "claimName"],
        RefKind::PersistentVolumeClaim,
    ),
    (&["csi", "nodePublishSecretRef", "name"], RefKind::Secret),
];
const PROJECTED_REFS: &[(&[&str], RefKind)] = &[
    (&["configMap", "name"], RefKind::ConfigMap),
    (&["secret", "name"], RefKind::Secret),
];
const ENV_REFS: &[(&[&str], RefKind)] = &[
    (
        &["valueFrom", "configMapKeyRef", "name"],
        RefKind::ConfigMap,
    ),
    (&["valueFrom", "secretKeyRef", "name"], RefKind::Secret),
];
const ENV_FROM_REFS: &[(&[&str], RefKind)] = &[
    (&["configMapRef", "name"], RefKind::ConfigMap),
    (&["secretRef", "name"], RefKind::Secret),
];

fn path_get<'a>(mut v: &'a Value, path: &[&str]) -> Option<&'a Value> {
    for p in path {
        v = v.get(*p)?;
    }
    Some(v)
}

fn array_mut<'a>(v: &'a mut Value, key: &str) -> impl Iterator<Item = &'a mut Value> {
    v.get_mut(key)
        .and_then(Value::as_array_mut)
        .into_iter()
        .flatten()
}

fn array<'a>(v: &'a Value, key: &str) -> impl Iterator<Item = (usize, &'a Value)> {
    v.get(key)
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
}

/// Whether the pod mounts a ServiceAccount token (a projected volume with a
/// `serviceAccountToken` source, as SA admission adds).
pub fn has_token_volume(vpod: &Value) -> bool {
    vpod.pointer("/spec/volumes")
        .and_then(Value::as_array)
        .is_some_and(|vs| vs.iter().any(is_token_volume))
}

fn is_token_volume(vol: &Value) -> bool {
    vol.pointer("/projected/sources")
        .and_then(Value::as_array)
        .is_some_and(|s| s.iter().any(|src| src.get("serviceAccountToken").is_some()))
}

/// Where in a pod spec (JSON pointers) a namespaced object is named, and what kind it is,
/// except the token sources of the service-account token volume (served by the token Secret).
/// Read without copying the spec: most pods name nothing but their token.
fn ref_pointers(spec: &Value) -> Vec<(RefKind, String)> {
    let mut out = Vec::new();
    let mut add = |v: &Value, refs: &[(&[&str], RefKind)], at: &dyn Fn() -> String| {
        for (path, kind) in refs {
            if path_get(v, path).is_some() {
                out.push((*kind, format!("{}/{}", at(), path.join("/"))));
            }
        }
    };
    for (i, vol) in array(spec, "volumes") {
        let token = is_token_volume(vol);
        if !token {
            add(vol, VOLUME_REFS, &|| format!("/volumes/{i}"));
        }
        let sources = vol.pointer("/projected/sources").and_then(Value::as_array);
        for (j, src) in sources.into_iter().flatten().enumerate() {
            if !token || token_source_items(src, "").is_none() {
                add(src, PROJECTED_REFS, &|| {
                    format!("/volumes/{i}/projected/sources/{j}")
                });
            }
        }
    }
    for list in CONTAINER_LISTS {
        for (i, c) in array(spec, list) {
            for (j, e) in array(c, "env") {
                add(e, ENV_REFS, &|| format!("/{list}/{i}/env/{j}"));
            }
            for (j, e) in array(c, "envFrom") {
                add(e, ENV_FROM_REFS, &|| format!("/{list}/{i}/envFrom/{j}"));
            }
        }
    }
    for (i, s) in array(spec, "imagePullSecrets") {
        add(s, &[(&["name"], RefKind::Secret)], &|| {
            format!("/imagePullSecrets/{i}")
        });
    }
    out
}

/// Every object the pod references, deduplicated and sorted.
pub fn referenced_objects(vpod: &Value) -> Vec<(RefKind, String)> {
    let Some(spec) = vpod.get("spec") else {
        return Vec::new();
    };
    let mut out: Vec<(RefKind, String)> = ref_pointers(spec)
        .into_iter()
        .filter_map(|(kind, at)| {
            let name = spec.pointer(&at)?.as_str().filter(|s| !s.is_empty())?;
            Some((kind, name.to_owned()))
        })
        .collect();
    out.sort();
    out.dedup();
    out
}

/// The key of a pod's token in the token Secret holding it (one Secret holds the tokens of
/// several pods of a namespace): `token-<virtual pod uid>`.
pub fn token_key(uid: &str) -> String {
    format!("{TOKEN_KEY_PREFIX}{uid}")
}

/// What a token Secret's keys holding pods' tokens start with ([`token_key`]).
pub const TOKEN_KEY_PREFIX: &str = "token-";

/// The token Secret physical pod `ppod` mounts its token from, the one written for virtual
/// pod `uid` (a secret volume or projected secret source with item key [`token_key`]).
pub fn token_secret_of<'a>(ppod: &'a Value, uid: &str) -> Option<&'a str> {
    let key = token_key(uid);
    let holds = |s: &Value| {
        s.get("items")
            .and_then(Value::as_array)
            .is_some_and(|items| {
                items
                    .iter()
                    .any(|i| i.get("key").and_then(Value::as_str) == Some(&key))
            })
    };
    let vols = ppod.pointer("/spec/volumes").and_then(Value::as_array)?;
    vols.iter().find_map(|vol| {
        if let Some(s) = vol.get("secret").filter(|s| holds(s)) {
            return s.get("secretName").and_then(Value::as_str);
        }
        let sources = vol
            .pointer("/projected/sources")
            .and_then(Value::as_array)?;
        sources
            .iter()
            .filter_map(|src| src.get("secret"))
            .find(|s| holds(s))
            .and_then(|s| s.get("name").and_then(Value::as_str))
    })
}

/// The secret items replacing one source of the token volume (the token read from key
/// `token_key`), or `None` when the source is not part of what SA admission injects.
fn token_source_items(src: &Value, token_key: &str) -> Option<Vec<Value>> {
    let item = |key: &str, it: &Value, default_path: &str| {
        let mut m = Map::new();
        m.insert("key".into(), key.into());
        m.insert(
            "path".into(),
            it.get("path")
                .cloned()
                .unwrap_or_else(|| default_path.into()),
        );
        if let Some(mode) = it.get("mode") {
            m.insert("mode".into(), mode.clone());
        }
        Value::Object(m)
    };
    if let Some(t) = src.get("serviceAccountToken") {
        return Some(vec![item(token_key, t, "token")]);
    }
    if let Some(cm) = src.get("configMap") {
        if cm.get("name").and_then(Value::as_str) != Some("kube-root-ca.crt") {
            return None;
        }
        return match cm.get("items").and_then(Value::as_array) {
            None => Some(vec![item("ca.crt", &Value::Null, "ca.crt")]),
            Some(items) => items
                .iter()
                .map(|i| {
                    (i.get("key").and_then(Value::as_str) == Some("ca.crt"))
                        .then(|| item("ca.crt", i, "ca.crt"))
                })
                .collect(),
        };
    }
    let items = src.pointer("/downwardAPI/items")?.as_array()?;
    items
        .iter()
        .map(|i| {
            (i.pointer("/fieldRef/fieldPath").and_then(Value::as_str) == Some("metadata.namespace"))
                .then(|| item("namespace", i, "namespace"))
        })
        .collect()
}

fn translate_token_volume(vol: &Value, secret: &str, token_key: &str) -> Value {
    let mut out = Map::new();
    out.insert(
        "name".into(),
        vol.get("name").cloned().unwrap_or(Value::Null),
    );
    let sources = vol
        .pointer("/projected/sources")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let per_source: Vec<Option<Vec<Value>>> = sources
        .iter()
        .map(|src| token_source_items(src, token_key))
        .collect();
    if per_source.iter().all(Option::is_some) {
        let items: Vec<Value> = per_source.into_iter().flatten().flatten().collect();
        let mut s = json!({ "secretName": secret, "items": items });
        if let Some(mode) = vol.pointer("/projected/defaultMode") {
            s["defaultMode"] = mode.clone();
        }
        out.insert("secret".into(), s);
    } else {
        let mut projected = vol.get("projected").cloned().unwrap_or_else(|| json!({}));
        projected["sources"] = sources
            .into_iter()
            .zip(per_source)
            .map(|(src, items)| match items {
                Some(items) => json!({ "secret": { "name": secret, "items": items } }),
                None => src,
            })
            .collect();
        out.insert("projected".into(), projected);
    }
    Value::Object(out)
}

fn injected_env(target: &Target) -> Vec<(&'static str, String)> {
    let host = if target.api_host.contains(':') {
        format!("[{}]", target.api_host)
    } else {
        target.api_host.clone()
    };
    let port = target.api_port.to_string();
    let url = format!("tcp://{host}:{port}");
    vec![
        ("KUBERNETES_SERVICE_HOST", target.api_host.clone()),
        ("KUBERNETES_SERVICE_PORT", port.clone()),
        ("KUBERNETES_SERVICE_PORT_HTTPS", port.clone()),
        ("KUBERNETES_PORT", url.clone()),
        ("KUBERNETES_PORT_443_TCP", url),
        ("KUBERNETES_PORT_443_TCP_PROTO", "tcp".into()),
        ("KUBERNETES_PORT_443_TCP_PORT", port),
        ("KUBERNETES_PORT_443_TCP_ADDR", target.api_host.clone()),
    ]
}

fn translate_container(
    c: &mut Value,
    id: &Identity,
    sa: &str,
    target: &Target,
    dropped: &[String],
) {
    let Some(obj) = c.as_object_mut() else { return };
    let mut env: Vec<Value> = match obj.remove("env") {
        Some(Value::Array(a)) => a,
        _ => Vec::new(),
    };
    for e in &mut env {
        let inlined = match e
            .pointer("/valueFrom/fieldRef/fieldPath")
            .and_then(Value::as_str)
        {
            Some("metadata.name") => Some(id.name),
            Some("metadata.namespace") => Some(id.namespace),
            Some("metadata.uid") => Some(id.uid),
            Some("spec.serviceAccountName") => Some(sa),
            _ => None,
        };
        if let (Some(value), Some(m)) = (inlined, e.as_object_mut()) {
            m.remove("valueFrom");
            m.insert("value".into(), value.into());
        }
    }
    let defined = |n: &str| {
        env.iter()
            .any(|e| e.get("name").and_then(Value::as_str) == Some(n))
    };
    let mut out: Vec<Value> = injected_env(target)
        .into_iter()
        .filter(|(n, _)| !defined(n))
        .map(|(n, v)| json!({ "name": n, "value": v }))
        .collect();
    out.extend(env);
    obj.insert("env".into(), out.into());
    if let Some(Value::Array(mounts)) = obj.get_mut("volumeMounts") {
        mounts.retain(|m| {
            !m.get("name")
                .and_then(Value::as_str)
                .is_some_and(|n| dropped.iter().any(|d| d == n))
        });
    }
}

fn translate_pod_spec(
    spec: &Value,
    id: &Identity,
    target: &Target,
    token_secret: Option<&str>,
) -> Value {
    let mut spec = spec.clone();
    let sa = spec
        .get("serviceAccountName")
        .or_else(|| spec.get("serviceAccount"))
        .and_then(Value::as_str)
        .unwrap_or("default")
        .to_owned();
    let vns = id.namespace;
    for (_, at) in ref_pointers(&spec) {
        if let Some(v) = spec.pointer_mut(&at)
            && let Some(s) = v.as_str()
        {
            *v = physical_name(s, vns, &target.vcluster_id).into();
        }
    }
    let mut dropped = Vec::new();
    if let Some(Value::Array(vols)) = spec.get_mut("volumes") {
        vols.retain_mut(|vol| {
            if !is_token_volume(vol) {
                return true;
            }
            match token_secret {
                Some(secret) => {
                    *vol = translate_token_volume(vol, secret, &token_key(id.uid));
                    true
                }
                None => {
                    if let Some(n) = vol.get("name").and_then(Value::as_str) {
                        dropped.push(n.to_owned());
                    }
                    false
                }
            }
        });
    }
    for list in CONTAINER_LISTS {
        for c in array_mut(&mut spec, list) {
            translate_container(c, id, &sa, target, &dropped);
        }
    }
    let Some(obj) = spec.as_object_mut() else {
        return spec;
    };
    for k in DROPPED_POD_SPEC {
        obj.remove(*k);
    }
    obj.insert("automountServiceAccountToken".into(), false.into());
    obj.insert("enableServiceLinks".into(), false.into());
    if let Some(dns) = &target.dns {
        use_virtual_dns(obj, dns, vns);
    }
    if !obj.contains_key("hostname") {
        let cut: String = id.name.chars().take(MAX_NAME).collect();
        let cut = cut.trim_end_matches(['-', '.']);
        if is_dns_label(cut) {
            obj.insert("hostname".into(), cut.into());
        }
    }
    spec
}

/// Points a pod that uses the cluster's DNS (`ClusterFirst`, the default, or
/// `ClusterFirstWithHostNet` on the host network) at the virtual cluster's DNS server,
/// as the kubelet would write its resolv.conf: that nameserver, the pod namespace's
/// search path, `ndots:5`; the pod's own `dnsConfig` entries follow.
fn use_virtual_dns(spec: &mut Map<String, Value>, dns: &str, vns: &str) {
    let host_network = spec.get("hostNetwork").and_then(Value::as_bool) == Some(true);
    let policy = spec
        .get("dnsPolicy")
        .and_then(Value::as_str)
        .unwrap_or("ClusterFirst");
    let cluster_first = match policy {
        "ClusterFirst" => !host_network,
        "ClusterFirstWithHostNet" => true,
        _ => false,
    };
    if !cluster_first {
        return;
    }
    let own = spec.remove("dnsConfig").unwrap_or_else(|| json!({}));
    let list = |key: &str| -> Vec<Value> {
        own.get(key)
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default()
    };
    let mut nameservers = vec![json!(dns)];
    nameservers.extend(list("nameservers").into_iter().filter(|n| n != dns));
    let mut searches = vec![
        json!(format!("{vns}.svc.{CLUSTER_DOMAIN}")),
        json!(format!("svc.{CLUSTER_DOMAIN}")),
        json!(CLUSTER_DOMAIN),
    ];
    for s in list("searches") {
        if !searches.contains(&s) {
            searches.push(s);
        }
    }
    let own_options = list("options");
    let mut options = Vec::new();
    if !own_options
        .iter()
        .any(|o| o.get("name") == Some(&json!("ndots")))
    {
        options.push(json!({"name": "ndots", "value": "5"}));
    }
    options.extend(own_options);
    spec.insert("dnsPolicy".into(), "None".into());
    spec.insert(
        "dnsConfig".into(),
        json!({"nameservers": nameservers, "searches": searches, "options": options}),
    );
}

/// Builds the physical Pod for a virtual pod (see the module rules).
/// `token_secret` is the physical name of the Secret holding the pod's
/// service-account `token`, `ca.crt` and `namespace`.
pub fn translate_pod(
    vpod: &Value,
    target: &Target,
    token_secret: Option<&str>,
) -> Result<Value, TranslateError> {
    let id = identity(vpod, "Pod")?;
    let spec = vpod
        .get("spec")
        .filter(|s| s.is_object())
        .ok_or(TranslateError::MissingField {
            kind: "Pod",
            field: "spec",
        })?;
    let mut obj = physical_object(vpod, &id, target);
    obj.insert(
        "spec".into(),
        translate_pod_spec(spec, &id, target, token_secret),
    );
    Ok(Value::Object(obj))
}

/// The physical pod to create from a [`translate_pod`] result: without its ephemeral
/// containers, which a pod cannot be created with; the syncer adds them afterwards through the
/// physical pod's `ephemeralcontainers` subresource.
pub fn for_create(mut ppod: Value) -> Value {
    if let Some(spec) = ppod.get_mut("spec").and_then(Value::as_object_mut) {
        spec.remove("ephemeralContainers");
    }
    ppod
}

// ---------------------------------------------------------------- other kinds

fn copy_fields(obj: &mut Map<String, Value>, v: &Value, keys: &[&str]) {
    for k in keys {
        if let Some(val) = v.get(*k) {
            obj.insert((*k).into(), val.clone());
        }
    }
}

pub fn translate_config_map(v: &Value, target: &Target) -> Result<Value, TranslateError> {
    let id = identity(v, "ConfigMap")?;
    let mut obj = physical_object(v, &id, target);
    copy_fields(&mut obj, v, &["data", "binaryData", "immutable"]);
    Ok(Value::Object(obj))
}

pub fn translate_secret(v: &Value, target: &Target) -> Result<Value, TranslateError> {
    let id = identity(v, "Secret")?;
    let mut obj = physical_object(v, &id, target);
    copy_fields(&mut obj, v, &["data", "stringData", "immutable", "type"]);
    if obj.get("type").and_then(Value::as_str) == Some("kubernetes.io/service-account-token") {
        obj.insert("type".into(), "Opaque".into());
    }
    Ok(Value::Object(obj))
}

const PVC_CONTROLLER_ANNOTATIONS: &[&str] = &[
    "pv.kubernetes.io/bind-completed",
    "pv.kubernetes.io/bound-by-controller",
    "volume.kubernetes.io/selected-node",
    "volume.kubernetes.io/storage-provisioner",
    "volume.beta.kubernetes.io/storage-provisioner",
];

/// Whether a physical Event is copied up: those about pods, except the physical scheduler's
/// `Scheduled`. The virtual cluster's scheduler placed the virtual pod (its `Scheduled` event
/// names the virtual node); a second one would name a node the virtual cluster does not have
/// (the physical node is the pod's `vkube.io/physical-node` annotation). A physical
/// `FailedScheduling` is copied: it says why the pod waits.
pub fn copied_up(event: &Value) -> bool {
    event
        .pointer("/involvedObject/kind")
        .and_then(Value::as_str)
        == Some("Pod")
        && event.get("reason").and_then(Value::as_str) != Some("Scheduled")
}

/// The virtual Event for a physical Event about a physical pod: about the virtual pod
/// (`vpod`: namespace, name, uid), named `<virtual pod>.<the physical event's suffix>`, the
/// physical pod's name in its message replaced by the virtual one.
pub fn virtual_event(physical: &Value, physical_pod: &str, vpod: (&str, &str, &str)) -> Value {
    let (vns, vname, vuid) = vpod;
    let pname = meta(physical, "name");
    let suffix = pname.rsplit('.').next().unwrap_or(pname);
    let pns = meta(physical, "namespace");
    let message = physical
        .get("message")
        .and_then(Value::as_str)
        .unwrap_or("")
        .replace(&format!("{pns}/{physical_pod}"), &format!("{vns}/{vname}"))
        .replace(physical_pod, vname);
    let mut out = Map::new();
    out.insert("apiVersion".into(), json!("v1"));
    out.insert("kind".into(), json!("Event"));
    out.insert(
        "metadata".into(),
        json!({"name": format!("{vname}.{suffix}"), "namespace": vns}),
    );
    let mut involved =
        json!({"apiVersion": "v1", "kind": "Pod", "name": vname, "namespace": vns, "uid": vuid});
    if let Some(fp) = physical.pointer("/involvedObject/fieldPath") {
        involved["fieldPath"] = fp.clone();
    }
    out.insert("involvedObject".into(), involved);
    out.insert("message".into(), json!(message));
    for k in [
        "reason",
        "type",
        "count",
        "firstTimestamp",
        "lastTimestamp",
        "eventTime",
        "source",
        "reportingComponent",
        "reportingInstance",
        "action",
        "series",
    ] {
        if let Some(v) = physical.get(k).filter(|v| !v.is_null()) {
            out.insert(k.into(), v.clone());
        }
    }
    Value::Object(out)
}

/// The physical Endpoints of a selector-less Service's virtual Endpoints: the same
/// addresses and ports (they name what the user pointed the Service at), a pod `targetRef`
/// renamed to the physical pod.
pub fn translate_endpoints(v: &Value, target: &Target) -> Result<Value, TranslateError> {
    let id = identity(v, "Endpoints")?;
    let mut obj = physical_object(v, &id, target);
    let mut subsets = v.get("subsets").cloned().unwrap_or_else(|| json!([]));
    for subset in subsets.as_array_mut().into_iter().flatten() {
        for list in ["addresses", "notReadyAddresses"] {
            for a in subset
                .get_mut(list)
                .and_then(Value::as_array_mut)
                .into_iter()
                .flatten()
            {
                let Some(t) = a.get_mut("targetRef").and_then(Value::as_object_mut) else {
                    continue;
                };
                if t.get("kind").and_then(Value::as_str) == Some("Pod") {
                    let ns = t
                        .get("namespace")
                        .and_then(Value::as_str)
                        .unwrap_or(id.namespace)
                        .to_string();
                    if let Some(name) = t.get("name").and_then(Value::as_str) {
                        let pname = physical_name(name, &ns, &target.vcluster_id);
                        t.insert("name".into(), json!(pname));
                    }
                    t.insert("namespace".into(), json!(target.namespace));
                }
                t.remove("uid");
                t.remove("resourceVersion");
            }
        }
    }
    obj.insert("subsets".into(), subsets);
    Ok(Value::Object(obj))
}

/// The status a virtual PersistentVolumeClaim shows for its physical claim: what binding
/// decided there (phase, capacity, access modes, conditions, resize state).
pub fn virtual_claim_status(physical: &Value) -> Value {
    let mut out = Map::new();
    if let Some(Value::Object(st)) = physical.get("status") {
        for k in [
            "phase",
            "capacity",
            "accessModes",
            "conditions",
            "allocatedResources",
            "allocatedResourceStatuses",
            "currentVolumeAttributesClassName",
            "modifyVolumeStatus",
        ] {
            if let Some(v) = st.get(k) {
                out.insert(k.into(), v.clone());
            }
        }
    }
    out.entry("phase").or_insert_with(|| json!("Pending"));
    Value::Object(out)
}

pub fn translate_pvc(v: &Value, target: &Target) -> Result<Value, TranslateError> {
    let id = identity(v, "PersistentVolumeClaim")?;
    let mut obj = physical_object(v, &id, target);
    if let Some(Value::Object(ann)) = obj
        .get_mut("metadata")
        .and_then(|m| m.get_mut("annotations"))
    {
        for k in PVC_CONTROLLER_ANNOTATIONS {
            ann.remove(*k);
        }
    }
    let mut spec = v.get("spec").cloned().unwrap_or_else(|| json!({}));
    if let Some(s) = spec.as_object_mut() {
        s.remove("volumeName");
        for key in ["dataSource", "dataSourceRef"] {
            let Some(ds) = s.get_mut(key) else { continue };
            let is_pvc = ds.get("kind").and_then(Value::as_str) == Some("PersistentVolumeClaim")
                && ds
                    .get("apiGroup")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .is_empty()
                && ds.get("namespace").is_none();
            if let (true, Some(name)) = (is_pvc, ds.get("name").and_then(Value::as_str)) {
                ds["name"] = physical_name(name, id.namespace, &target.vcluster_id).into();
            }
        }
    }
    obj.insert("spec".into(), spec);
    Ok(Value::Object(obj))
}

pub fn translate_service(v: &Value, target: &Target) -> Result<Value, TranslateError> {
    let id = identity(v, "Service")?;
    let mut obj = physical_object(v, &id, target);
    let mut spec = v.get("spec").cloned().unwrap_or_else(|| json!({}));
    if let Some(s) = spec.as_object_mut() {
        let headless = s.get("clusterIP").and_then(Value::as_str) == Some("None");
        for k in [
            "clusterIP",
            "clusterIPs",
            "ipFamilies",
            "healthCheckNodePort",
        ] {
            s.remove(k);
        }
        if headless {
            s.insert("clusterIP".into(), "None".into());
            s.insert("clusterIPs".into(), json!(["None"]));
        }
        for p in s
            .get_mut("ports")
            .and_then(Value::as_array_mut)
            .into_iter()
            .flatten()
        {
            if let Some(p) = p.as_object_mut() {
                p.remove("nodePort");
            }
        }
        if let Some(Value::Object(sel)) = s.get_mut("selector")
            && !sel.is_empty()
        {
            sel.extend(managed_labels(id.namespace, &target.vcluster_id));
        }
    }
    obj.insert("spec".into(), spec);
    Ok(Value::Object(obj))
}

// ---------------------------------------------------------------- up-sync

const COPIED_STATUS: &[&str] = &[
    "phase",
    "message",
    "reason",
    "podIP",
    "podIPs",
    "hostIP",
    "hostIPs",
    "startTime",
    "containerStatuses",
    "initContainerStatuses",
    "ephemeralContainerStatuses",
    "qosClass",
    "resize",
];

/// The virtual pod's new status from the physical pod's (see the module rules).
pub fn virtual_pod_status(ppod: &Value, vpod: &Value) -> Value {
    let empty = Map::new();
    let pstatus = ppod
        .get("status")
        .and_then(Value::as_object)
        .unwrap_or(&empty);
    let mut status = vpod
        .get("status")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    for k in COPIED_STATUS {
        match pstatus.get(*k) {
            Some(v) => status.insert((*k).into(), v.clone()),
            None => status.remove(*k),
        };
    }
    status.entry("phase").or_insert_with(|| "Pending".into());
    let ctype = |c: &Value| c.get("type").and_then(Value::as_str).map(str::to_owned);
    let physical: Vec<Value> = pstatus
        .get("conditions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|c| {
            let mut c = c.clone();
            if let Some(m) = c.as_object_mut() {
                m.remove("observedGeneration");
            }
            c
        })
        .collect();
    let types: Vec<Option<String>> = physical.iter().map(ctype).collect();
    // Taken in place, so the key keeps its position.
    let kept: Vec<Value> = match status.get_mut("conditions").map(Value::take) {
        Some(Value::Array(cs)) => cs
            .into_iter()
            .filter(|c| !types.contains(&ctype(c)))
            .collect(),
        _ => Vec::new(),
    };
    let conditions: Vec<Value> = physical.into_iter().chain(kept).collect();
    if conditions.is_empty() {
        status.remove("conditions");
    } else {
        status.insert("conditions".into(), conditions.into());
    }
    Value::Object(status)
}

/// The annotation showing which physical node runs the pod, once scheduled.
pub fn physical_node_annotation(ppod: &Value) -> Option<(&'static str, String)> {
    ppod.pointer("/spec/nodeName")
        .and_then(Value::as_str)
        .filter(|n| !n.is_empty())
        .map(|n| (ANN_PHYSICAL_NODE, n.to_owned()))
}

// ---------------------------------------------------------------- updates

/// The `metadata` of a patch that brings the physical pod `ppod`'s labels to exactly those
/// of `vpod`'s copy (a Service's rewritten selector picks physical pods by them) and its
/// annotations to those `vpod`'s copy has (annotations the physical cluster added, by
/// admission for example, stay); `None` when both are in step.
pub fn metadata_patch(vpod: &Value, ppod: &Value, target: &Target) -> Option<Value> {
    let want = physical_labels(vpod, target);
    let have = ppod.pointer("/metadata/labels").and_then(Value::as_object);
    let mut labels: Map<String, Value> = want
        .iter()
        .filter(|(k, v)| have.and_then(|h| h.get(*k)) != Some(*v))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    for k in have.into_iter().flatten().map(|(k, _)| k) {
        if !want.contains_key(k) {
            labels.insert(k.clone(), Value::Null);
        }
    }
    let have = ppod
        .pointer("/metadata/annotations")
        .and_then(Value::as_object);
    let annotations: Map<String, Value> = physical_annotations(vpod, target)
        .into_iter()
        .filter(|(k, v)| have.and_then(|h| h.get(k)) != Some(v))
        .collect();
    let mut patch = Map::new();
    for (key, changed) in [("labels", labels), ("annotations", annotations)] {
        if !changed.is_empty() {
            patch.insert(key.into(), changed.into());
        }
    }
    (!patch.is_empty()).then(|| Value::Object(patch))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target() -> Target {
        let (host, port) = ("10.0.0.9".into(), 6443);
        Target {
            vcluster_id: "vk1".into(),
            namespace: "tenant".into(),
            api_host: host,
            api_port: port,
            dns: None,
        }
    }

    fn p(name: &str) -> String {
        physical_name(name, "ns", "vk1")
    }

    fn pod(token: Option<&str>) -> Value {
        translate_pod(&vpod(), &target(), token).expect("translate")
    }

    fn vpod() -> Value {
        let mounts = json!([{"name": "kube-api-access-abcde", "mountPath": "/var/run/secrets/x"},
                            {"name": "cfg", "mountPath": "/cfg"}]);
        json!({"apiVersion": "v1", "kind": "Pod", "metadata": {
            "name": "web-0", "namespace": "ns", "uid": "u-1", "resourceVersion": "7", "generation": 1,
            "creationTimestamp": "t", "finalizers": ["f"], "managedFields": [],
            "ownerReferences": [{"kind": "StatefulSet", "name": "web"}],
            "labels": {"app": "web"}, "annotations": {"a": "b", "vkube.io/physical-node": "w1"}},
          "spec": {
            "nodeName": "cluster-a", "serviceAccountName": "builder", "serviceAccount": "builder",
            "priorityClassName": "high", "priority": 1000, "nodeSelector": {"topology.vkube.io/cluster": "a"},
            "affinity": {"nodeAffinity": {}}, "topologySpreadConstraints": [{"maxSkew": 1}],
            "tolerations": [{"key": "k", "operator": "Exists"}],
            "imagePullSecrets": [{"name": "regcred"}],
            "volumes": [
                {"name": "cfg", "configMap": {"name": "app-config"}},
                {"name": "sec", "secret": {"secretName": "app-secret"}},
                {"name": "data", "persistentVolumeClaim": {"claimName": "data-web-0"}},
                {"name": "csi", "csi": {"driver": "d", "nodePublishSecretRef": {"name": "csi-creds"}}},
                {"name": "proj", "projected": {"sources": [{"configMap": {"name": "proj-cm"}},
                                                           {"secret": {"name": "proj-sec"}}]}},
                {"name": "kube-api-access-abcde", "projected": {"defaultMode": 420, "sources": [
                    {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
                    {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
                    {"downwardAPI": {"items": [{"path": "namespace",
                        "fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"}}]}}]}}
            ],
            "initContainers": [{"name": "init", "image": "busybox", "volumeMounts": mounts.clone(),
                "envFrom": [{"configMapRef": {"name": "init-env"}}]}],
            "containers": [{"name": "app", "image": "nginx:1", "volumeMounts": mounts,
                "env": [{"name": "A", "valueFrom": {"configMapKeyRef": {"name": "env-cm", "key": "a"}}},
                        {"name": "B", "valueFrom": {"secretKeyRef": {"name": "env-sec", "key": "b"}}},
                        {"name": "NS", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
                        {"name": "POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
                        {"name": "KUBERNETES_SERVICE_HOST", "value": "user-set"}],
                "envFrom": [{"secretRef": {"name": "env-from-sec"}}],
                "resources": {"requests": {"cpu": "100m"}}}],
            "ephemeralContainers": [{"name": "dbg", "image": "busybox",
                "env": [{"name": "C", "valueFrom": {"configMapKeyRef": {"name": "dbg-cm", "key": "c"}}}]}]
          },
          "status": {"phase": "Pending"}})
    }

    #[test]
    fn physical_names() {
        let (a52, a53, n60) = ("a".repeat(52), "a".repeat(53), "n".repeat(60));
        let dotted = format!("{}.{}", "b".repeat(51), "c".repeat(30));
        // (name, namespace, Some(expected) | None = hashed)
        let cases: &[(&str, &str, Option<String>)] = &[
            ("web", "default", Some("web-x-default-x-vk1".into())),
            (&a52, "ns", Some(format!("{a52}-x-ns-x-vk1"))), // exactly 63
            (&a53, "ns", None),                              // 64
            ("web", &n60, None),
            ("app.config", "ns", None), // dots are not label characters
            ("a-x-b", "c", None),       // ambiguous split
            ("a", "b-x-c", None),
            ("name-", "ns", Some("name--x-ns-x-vk1".into())),
            (&dotted, "ns", None),
        ];
        for (name, ns, want) in cases {
            let got = physical_name(name, ns, "vk1");
            assert!(is_dns_label(&got), "{got} is not a DNS label");
            assert_eq!(got, physical_name(name, ns, "vk1"), "deterministic");
            match want {
                Some(w) => assert_eq!(&got, w),
                None => {
                    let (prefix, hash) = got.rsplit_once('-').expect("hash suffix");
                    assert_eq!(hash.len(), 10, "{got}");
                    assert!(prefix.len() <= 52 && !prefix.ends_with('-'), "{got}");
                }
            }
        }
        assert_eq!(physical_name(&a53, "ns", "vk1").len(), 63);
        // Distinct inputs, including ones whose joined strings coincide.
        let pairs = [
            ("a-x-b", "c"),
            ("a", "b-x-c"),
            ("a-x", "b"),
            ("a", "x-b"),
            ("a.b", "c"),
            ("a-b", "c"),
        ];
        let mut names: Vec<String> = pairs
            .iter()
            .map(|(n, s)| physical_name(n, s, "vk1"))
            .collect();
        names.extend(
            (0..200).map(|i| physical_name(&format!("{}{i}", "x".repeat(60)), "ns", "vk1")),
        );
        let total = names.len();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), total);
    }

    #[test]
    fn pod_metadata_and_dropped_fields() {
        let pp = pod(Some("tok"));
        let m = &pp["metadata"];
        assert_eq!(
            (&m["name"], &m["namespace"]),
            (&json!(p("web-0")), &json!("tenant"))
        );
        let labels = json!({"app": "web", LABEL_MANAGED_BY: "vk1", LABEL_NAMESPACE: "ns"});
        assert_eq!(m["labels"], labels);
        let ann = json!({"a": "b", ANN_NAME: "web-0", ANN_NAMESPACE: "ns", ANN_UID: "u-1", ANN_VCLUSTER: "vk1"});
        assert_eq!(m["annotations"], ann);
        let meta_keys: Vec<&String> = m.as_object().expect("metadata").keys().collect();
        assert_eq!(meta_keys, ["name", "namespace", "labels", "annotations"]);
        assert!(pp.get("status").is_none());
        let s = &pp["spec"];
        for k in DROPPED_POD_SPEC {
            assert!(s.get(*k).is_none(), "{k} kept");
        }
        assert_eq!(
            s["tolerations"],
            json!([{"key": "k", "operator": "Exists"}])
        );
        assert_eq!(
            (&s["automountServiceAccountToken"], &s["enableServiceLinks"]),
            (&json!(false), &json!(false))
        );
        assert_eq!(s["hostname"], "web-0");
    }

    #[test]
    fn every_reference_rewritten() {
        let pp = pod(Some("tok"));
        let cases: &[(&str, &str)] = &[
            ("/spec/volumes/0/configMap/name", "app-config"),
            ("/spec/volumes/1/secret/secretName", "app-secret"),
            (
                "/spec/volumes/2/persistentVolumeClaim/claimName",
                "data-web-0",
            ),
            ("/spec/volumes/3/csi/nodePublishSecretRef/name", "csi-creds"),
            (
                "/spec/volumes/4/projected/sources/0/configMap/name",
                "proj-cm",
            ),
            (
                "/spec/volumes/4/projected/sources/1/secret/name",
                "proj-sec",
            ),
            (
                "/spec/containers/0/env/7/valueFrom/configMapKeyRef/name",
                "env-cm",
            ),
            (
                "/spec/containers/0/env/8/valueFrom/secretKeyRef/name",
                "env-sec",
            ),
            (
                "/spec/containers/0/envFrom/0/secretRef/name",
                "env-from-sec",
            ),
            (
                "/spec/initContainers/0/envFrom/0/configMapRef/name",
                "init-env",
            ),
            (
                "/spec/ephemeralContainers/0/env/8/valueFrom/configMapKeyRef/name",
                "dbg-cm",
            ),
            ("/spec/imagePullSecrets/0/name", "regcred"),
        ];
        for (ptr, v) in cases {
            assert_eq!(pp.pointer(ptr), Some(&json!(p(v))), "{ptr}");
        }
        // downward API values the physical pod would get wrong are inlined
        assert_eq!(
            pp["spec"]["containers"][0]["env"][9],
            json!({"name": "NS", "value": "ns"})
        );
        assert_eq!(
            pp["spec"]["containers"][0]["env"][10],
            json!({"name": "POD", "value": "web-0"})
        );

        use RefKind::{ConfigMap as C, PersistentVolumeClaim as P, Secret as S};
        let want: Vec<(RefKind, String)> = [
            (C, "app-config"),
            (C, "dbg-cm"),
            (C, "env-cm"),
            (C, "init-env"),
            (C, "proj-cm"),
            (S, "app-secret"),
            (S, "csi-creds"),
            (S, "env-from-sec"),
            (S, "env-sec"),
            (S, "proj-sec"),
            (S, "regcred"),
            (P, "data-web-0"),
        ]
        .map(|(k, n)| (k, n.to_owned()))
        .to_vec();
        assert_eq!(referenced_objects(&vpod()), want);
        let mut dup = vpod();
        dup["spec"]["volumes"][1]["secret"]["secretName"] = "regcred".into();
        assert_eq!(
            referenced_objects(&dup).len(),
            want.len() - 1,
            "deduplicated"
        );
    }

    #[test]
    fn token_volume_replaced_or_dropped() {
        let mounts = |pp: &Value, c: &str| -> Vec<Value> {
            let list = pp["spec"][c][0]["volumeMounts"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            list.iter().map(|m| m["name"].clone()).collect()
        };
        let pp = pod(Some("tok"));
        let items = json!([{"key": "token-u-1", "path": "token"}, {"key": "ca.crt", "path": "ca.crt"},
                           {"key": "namespace", "path": "namespace"}]);
        let secret = json!({"secretName": "tok", "items": items, "defaultMode": 420});
        assert_eq!(
            pp["spec"]["volumes"][5],
            json!({"name": "kube-api-access-abcde", "secret": secret})
        );
        assert_eq!(mounts(&pp, "containers"), ["kube-api-access-abcde", "cfg"]);
        // The Secret holding a pod's token is found from the physical pod (by its key).
        assert_eq!(token_secret_of(&pp, "u-1"), Some("tok"));
        assert_eq!(token_secret_of(&pp, "u-2"), None);

        let pp = pod(None);
        let vols = pp["spec"]["volumes"].as_array().expect("volumes");
        assert_eq!(vols.len(), 5);
        assert!(vols.iter().all(|v| v["name"] != "kube-api-access-abcde"));
        for c in ["containers", "initContainers"] {
            assert_eq!(mounts(&pp, c), ["cfg"], "{c}");
        }

        // A projected volume mixing the token with a user source keeps its shape.
        let mut mixed = vpod();
        mixed["spec"]["volumes"] = json!([{"name": "mix", "projected": {"sources": [
            {"serviceAccountToken": {"audience": "vault", "path": "vault-token"}},
            {"configMap": {"name": "other"}}]}}]);
        let pp = translate_pod(&mixed, &target(), Some("tok")).expect("translate");
        let token = json!({"secret": {"name": "tok", "items": [{"key": "token-u-1", "path": "vault-token"}]}});
        let sources = json!([token, {"configMap": {"name": p("other")}}]);
        assert_eq!(pp["spec"]["volumes"][0]["projected"]["sources"], sources);
        assert_eq!(token_secret_of(&pp, "u-1"), Some("tok"));
        assert!(referenced_objects(&mixed).contains(&(RefKind::ConfigMap, "other".into())));
        assert!(
            !referenced_objects(&vpod())
                .iter()
                .any(|(_, n)| n == "kube-root-ca.crt")
        );
    }

    /// A pod is created physically without the ephemeral containers its translation carries.
    #[test]
    fn pods_are_created_without_ephemeral_containers() {
        let pp = pod(Some("tok"));
        assert!(pp.pointer("/spec/ephemeralContainers/0").is_some());
        let created = for_create(pp.clone());
        assert_eq!(created.pointer("/spec/ephemeralContainers"), None);
        assert_eq!(created["spec"]["containers"], pp["spec"]["containers"]);
    }

    #[test]
    fn env_injected() {
        let pp = pod(Some("tok"));
        let url = "tcp://10.0.0.9:6443";
        let cases: &[(&str, &str, &str)] = &[
            ("containers", "KUBERNETES_SERVICE_HOST", "user-set"), // explicit env wins
            ("containers", "KUBERNETES_SERVICE_PORT", "6443"),
            ("containers", "KUBERNETES_PORT", url),
            ("initContainers", "KUBERNETES_SERVICE_HOST", "10.0.0.9"),
            ("initContainers", "KUBERNETES_SERVICE_PORT_HTTPS", "6443"),
            ("initContainers", "KUBERNETES_PORT_443_TCP", url),
            (
                "ephemeralContainers",
                "KUBERNETES_PORT_443_TCP_ADDR",
                "10.0.0.9",
            ),
        ];
        for (list, name, value) in cases {
            let env = pp["spec"][list][0]["env"].as_array().expect("env");
            let hits: Vec<&Value> = env.iter().filter(|e| e["name"] == *name).collect();
            assert_eq!(hits.len(), 1, "{list} {name}");
            assert_eq!(hits[0]["value"], *value, "{list} {name}");
        }
        let first = &pp["spec"]["initContainers"][0]["env"][0]["name"];
        assert_eq!(
            first, "KUBERNETES_SERVICE_HOST",
            "injected first so $(VAR) resolves"
        );
        let v6 = Target {
            api_host: "fd00::1".into(),
            ..target()
        };
        let pp = translate_pod(&vpod(), &v6, None).expect("translate");
        let want = json!({"name": "KUBERNETES_PORT", "value": "tcp://[fd00::1]:6443"});
        assert_eq!(pp["spec"]["initContainers"][0]["env"][3], want);
    }

    #[test]
    fn bad_input_is_an_error() {
        let missing = |field| TranslateError::MissingField { kind: "Pod", field };
        let cases = [
            (json!("pod"), TranslateError::NotAnObject { kind: "Pod" }),
            (
                json!({"metadata": {"namespace": "ns", "uid": "u"}, "spec": {}}),
                missing("metadata.name"),
            ),
            (
                json!({"metadata": {"name": "a", "namespace": "ns"}, "spec": {}}),
                missing("metadata.uid"),
            ),
            (
                json!({"metadata": {"name": "a", "namespace": "ns", "uid": "u"}}),
                missing("spec"),
            ),
        ];
        for (v, want) in cases {
            assert_eq!(translate_pod(&v, &target(), None), Err(want));
        }
    }

    #[test]
    fn other_kinds() {
        let t = target();
        let meta = json!({"name": "s", "namespace": "ns", "uid": "u"});
        let sa = json!({"metadata": meta, "type": "kubernetes.io/service-account-token", "data": {"k": "dA=="}});
        let sec = translate_secret(&sa, &t).expect("secret");
        assert_eq!(
            (&sec["type"], &sec["data"]),
            (&json!("Opaque"), &json!({"k": "dA=="}))
        );
        let tls = translate_secret(&json!({"metadata": meta, "type": "kubernetes.io/tls"}), &t);
        assert_eq!(tls.expect("secret")["type"], "kubernetes.io/tls");
        let cm = json!({"metadata": meta, "data": {"k": "v"}, "immutable": true});
        let cm = translate_config_map(&cm, &t).expect("cm");
        assert_eq!(
            (&cm["kind"], &cm["data"]["k"], &cm["immutable"]),
            (&json!("ConfigMap"), &json!("v"), &json!(true))
        );
        assert_eq!(cm["metadata"]["name"], p("s"));
        let pvc = json!({"metadata": {"name": "s", "namespace": "ns", "uid": "u",
                "annotations": {"volume.kubernetes.io/selected-node": "cluster-a", "keep": "1"}},
            "spec": {"volumeName": "pv-1", "storageClassName": "fast", "accessModes": ["ReadWriteOnce"],
                     "dataSource": {"kind": "PersistentVolumeClaim", "name": "src"}}});
        let pvc = translate_pvc(&pvc, &t).expect("pvc");
        let spec = json!({"storageClassName": "fast", "accessModes": ["ReadWriteOnce"],
                          "dataSource": {"kind": "PersistentVolumeClaim", "name": p("src")}});
        assert_eq!(pvc["spec"], spec);
        let ann = &pvc["metadata"]["annotations"];
        assert!(ann.get("volume.kubernetes.io/selected-node").is_none() && ann["keep"] == "1");
    }

    #[test]
    fn services() {
        let sel = |app: &str| json!({"app": app, LABEL_MANAGED_BY: "vk1", LABEL_NAMESPACE: "ns"});
        let cases = [
            (
                json!({"type": "ClusterIP", "clusterIP": "10.96.0.5", "clusterIPs": ["10.96.0.5"],
                    "ipFamilies": ["IPv4"], "selector": {"app": "web"}, "ports": [{"port": 80}]}),
                json!({"type": "ClusterIP", "selector": sel("web"), "ports": [{"port": 80}]}),
            ),
            (
                json!({"clusterIP": "None", "clusterIPs": ["None"], "selector": {"app": "db"}}),
                json!({"selector": sel("db"), "clusterIP": "None", "clusterIPs": ["None"]}),
            ),
            (
                json!({"type": "LoadBalancer", "clusterIP": "10.96.0.6", "healthCheckNodePort": 31000,
                    "selector": {"app": "web"}, "ports": [{"port": 80, "nodePort": 30080}]}),
                json!({"type": "LoadBalancer", "selector": sel("web"), "ports": [{"port": 80}]}),
            ),
            // selectorless: must not select every managed pod
            (
                json!({"ports": [{"port": 5432}]}),
                json!({"ports": [{"port": 5432}]}),
            ),
            (json!({"selector": {}}), json!({"selector": {}})),
        ];
        for (spec, want) in cases {
            let v =
                json!({"metadata": {"name": "web", "namespace": "ns", "uid": "u"}, "spec": spec});
            let got = translate_service(&v, &target()).expect("service");
            assert_eq!(got["spec"], want, "{spec}");
            assert_eq!(got["metadata"]["name"], p("web"));
        }
    }

    #[test]
    fn status_copied_up() {
        let ppod = json!({"spec": {"nodeName": "worker-3"}, "status": {
            "phase": "Running", "podIP": "10.244.1.7", "podIPs": [{"ip": "10.244.1.7"}],
            "hostIP": "172.18.0.3", "startTime": "t", "qosClass": "Burstable", "observedGeneration": 4,
            "containerStatuses": [{"name": "app", "ready": true}],
            "conditions": [{"type": "Ready", "status": "True", "observedGeneration": 4},
                           {"type": "PodScheduled", "status": "True"}]}});
        let vpod = json!({"status": {"phase": "Pending", "nominatedNodeName": "x", "message": "old",
            "conditions": [{"type": "PodScheduled", "status": "True", "reason": "virtual"},
                           {"type": "DisruptionTarget", "status": "True"}]}});
        let st = virtual_pod_status(&ppod, &vpod);
        let conditions = json!([{"type": "Ready", "status": "True"}, {"type": "PodScheduled", "status": "True"},
                                {"type": "DisruptionTarget", "status": "True"}]);
        let cases: &[(&str, Value)] = &[
            ("phase", json!("Running")),
            ("podIP", json!("10.244.1.7")),
            ("podIPs", json!([{"ip": "10.244.1.7"}])),
            ("hostIP", json!("172.18.0.3")),
            ("startTime", json!("t")),
            ("qosClass", json!("Burstable")),
            ("containerStatuses", json!([{"name": "app", "ready": true}])),
            ("nominatedNodeName", json!("x")),
            ("conditions", conditions),
        ];
        for (k, v) in cases {
            assert_eq!(&st[*k], v, "{k}");
        }
        for k in ["message", "observedGeneration", "initContainerStatuses"] {
            assert!(st.get(k).is_none(), "{k}");
        }
        assert_eq!(
            virtual_pod_status(&json!({}), &json!({})),
            json!({"phase": "Pending"})
        );
        let node = Some((ANN_PHYSICAL_NODE, "worker-3".to_owned()));
        assert_eq!(physical_node_annotation(&ppod), node);
        assert_eq!(physical_node_annotation(&json!({"spec": {}})), None);
    }

    #[test]
    fn virtual_key_round_trip() {
        let t = target();
        let obj = json!({"metadata": {"name": "x", "namespace": "team-a", "uid": "u-9"}});
        let key = |ns, name, uid| Some((ns, name, uid));
        let cases = [
            (translate_pod(&vpod(), &t, None), key("ns", "web-0", "u-1")),
            (translate_config_map(&obj, &t), key("team-a", "x", "u-9")),
            (translate_secret(&obj, &t), key("team-a", "x", "u-9")),
            (translate_pvc(&obj, &t), key("team-a", "x", "u-9")),
            (translate_service(&obj, &t), key("team-a", "x", "u-9")),
        ];
        for (pobj, want) in cases {
            let pobj = pobj.expect("translate");
            assert_eq!(virtual_key(&pobj, "vk1"), want);
            assert_eq!(virtual_key(&pobj, "other"), None);
        }
        let partial = json!({"metadata": {"annotations": {ANN_VCLUSTER: "vk1"}}});
        assert_eq!(virtual_key(&partial, "vk1"), None);
        assert_eq!(
            virtual_key(&json!({"metadata": {"name": "foreign"}}), "vk1"),
            None
        );
    }

    #[test]
    fn physical_labels_follow_the_virtual_pod_and_annotations_gain_its_own() {
        let t = target();
        let vpod = |labels: Value, annotations: Value| {
            json!({"metadata": {"name": "a", "namespace": "shop", "uid": "u",
                                "labels": labels, "annotations": annotations},
                   "spec": {"containers": [{"name": "c", "image": "x"}]}})
        };
        let created = translate_pod(&vpod(json!({"app": "web"}), json!({"note": "1"})), &t, None)
            .expect("translates");
        // In step: nothing to patch.
        let same = vpod(json!({"app": "web"}), json!({"note": "1"}));
        assert_eq!(metadata_patch(&same, &created, &t), None);
        // Annotations the physical cluster added stay.
        let mut admitted = created.clone();
        admitted["metadata"]["annotations"]["sidecar/status"] = json!("injected");
        assert_eq!(metadata_patch(&same, &admitted, &t), None);
        // A label changed and one added, an annotation changed: only those.
        let changed = vpod(json!({"tier": "1", "app": "api"}), json!({"note": "2"}));
        assert_eq!(
            metadata_patch(&changed, &admitted, &t),
            Some(json!({"labels": {"tier": "1", "app": "api"}, "annotations": {"note": "2"}}))
        );
        // A label removed.
        let unlabelled = vpod(json!({}), json!({"note": "1"}));
        assert_eq!(
            metadata_patch(&unlabelled, &created, &t),
            Some(json!({"labels": {"app": null}}))
        );
        // The labels and annotations naming the virtual pod are never taken away.
        let forged = vpod(json!({LABEL_MANAGED_BY: "other"}), json!({ANN_UID: "x"}));
        assert_eq!(
            metadata_patch(&forged, &created, &t),
            Some(json!({"labels": {"app": null}}))
        );
    }

    #[test]
    fn pods_using_cluster_dns_get_the_virtual_dns() {
        let t = Target {
            dns: Some("10.96.0.10".into()),
            ..target()
        };
        let pod = |spec: Value| json!({"metadata": {"name": "a", "namespace": "shop", "uid": "u"}, "spec": spec});
        let c = json!([{"name": "c", "image": "x"}]);
        // The default policy: the virtual DNS, the namespace's search path, ndots:5.
        let got = translate_pod(&pod(json!({"containers": c})), &t, None).unwrap();
        assert_eq!(got["spec"]["dnsPolicy"], "None");
        assert_eq!(
            got["spec"]["dnsConfig"],
            json!({
                "nameservers": ["10.96.0.10"],
                "searches": ["shop.svc.cluster.local", "svc.cluster.local", "cluster.local"],
                "options": [{"name": "ndots", "value": "5"}],
            })
        );
        // The pod's own dnsConfig follows; its ndots wins.
        let own = json!({"containers": c, "dnsConfig": {
            "nameservers": ["1.1.1.1"], "searches": ["corp.example"],
            "options": [{"name": "ndots", "value": "2"}, {"name": "edns0"}]}});
        let got = translate_pod(&pod(own), &t, None).unwrap();
        assert_eq!(
            got["spec"]["dnsConfig"],
            json!({
                "nameservers": ["10.96.0.10", "1.1.1.1"],
                "searches": ["shop.svc.cluster.local", "svc.cluster.local", "cluster.local", "corp.example"],
                "options": [{"name": "ndots", "value": "2"}, {"name": "edns0"}],
            })
        );
        // Other policies, host-network pods with ClusterFirst, and no virtual DNS: untouched.
        for spec in [
            json!({"containers": c, "dnsPolicy": "Default"}),
            json!({"containers": c, "dnsPolicy": "ClusterFirst", "hostNetwork": true}),
        ] {
            let got = translate_pod(&pod(spec.clone()), &t, None).unwrap();
            assert_eq!(got["spec"].get("dnsPolicy"), spec.get("dnsPolicy"));
            assert!(got["spec"].get("dnsConfig").is_none());
        }
        let got = translate_pod(
            &pod(json!({"containers": c, "dnsPolicy": "ClusterFirstWithHostNet", "hostNetwork": true})),
            &t,
            None,
        )
        .unwrap();
        assert_eq!(got["spec"]["dnsPolicy"], "None");
        let got = translate_pod(&pod(json!({"containers": c})), &target(), None).unwrap();
        assert!(got["spec"].get("dnsPolicy").is_none() && got["spec"].get("dnsConfig").is_none());
    }

    #[test]
    fn physical_events_about_pods_become_virtual_events() {
        let pe = json!({
            "metadata": {"name": "web-x-shop-x-vk1.18a2b3c4d5e6", "namespace": "tenant", "resourceVersion": "9"},
            "involvedObject": {"kind": "Pod", "name": "web-x-shop-x-vk1", "namespace": "tenant", "uid": "p-uid",
                               "fieldPath": "spec.containers{c}"},
            "reason": "Scheduled", "type": "Normal", "count": 2,
            "message": "Successfully assigned tenant/web-x-shop-x-vk1 to east-node-1",
            "firstTimestamp": "2026-01-01T00:00:00Z", "lastTimestamp": "2026-01-01T00:00:05Z",
            "source": {"component": "default-scheduler"}, "eventTime": null,
        });
        let ve = virtual_event(&pe, "web-x-shop-x-vk1", ("shop", "web", "v-uid"));
        assert_eq!(
            ve,
            json!({
                "apiVersion": "v1", "kind": "Event",
                "metadata": {"name": "web.18a2b3c4d5e6", "namespace": "shop"},
                "involvedObject": {"apiVersion": "v1", "kind": "Pod", "name": "web", "namespace": "shop",
                                   "uid": "v-uid", "fieldPath": "spec.containers{c}"},
                "message": "Successfully assigned shop/web to east-node-1",
                "reason": "Scheduled", "type": "Normal", "count": 2,
                "firstTimestamp": "2026-01-01T00:00:00Z", "lastTimestamp": "2026-01-01T00:00:05Z",
                "source": {"component": "default-scheduler"},
            })
        );
    }

    #[test]
    fn the_physical_schedulers_placement_is_not_copied_up() {
        let event = |kind: &str, reason: &str| json!({"involvedObject": {"kind": kind, "name": "web-x-shop-x-vk1"}, "reason": reason});
        assert!(copied_up(&event("Pod", "Started")));
        assert!(copied_up(&event("Pod", "FailedScheduling")));
        assert!(!copied_up(&event("Pod", "Scheduled")));
        assert!(!copied_up(&event("Node", "Started")));
    }

    #[test]
    fn endpoints_of_selectorless_services_keep_their_addresses() {
        let v = json!({"metadata": {"name": "db", "namespace": "shop", "uid": "u1"},
            "subsets": [{"addresses": [{"ip": "192.0.2.10"},
                                       {"ip": "10.1.0.4", "targetRef": {"kind": "Pod", "name": "p", "namespace": "shop", "uid": "x"}}],
                         "ports": [{"port": 5432, "protocol": "TCP"}]}]});
        let got = translate_endpoints(&v, &target()).unwrap();
        assert_eq!(got["metadata"]["name"], physical_name("db", "shop", "vk1"));
        assert_eq!(got["metadata"]["namespace"], "tenant");
        assert_eq!(
            got["subsets"],
            json!([{"addresses": [{"ip": "192.0.2.10"},
                                  {"ip": "10.1.0.4", "targetRef": {"kind": "Pod", "name": physical_name("p", "shop", "vk1"), "namespace": "tenant"}}],
                    "ports": [{"port": 5432, "protocol": "TCP"}]}])
        );
    }
}
