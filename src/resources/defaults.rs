//! Defaulting of the built-in kinds, as kube-apiserver 1.33 applies it.
//!
//! [`apply_defaults`] fills in what a v1.33 kube-apiserver would have filled in by the time an
//! object is first read back: the scheme defaults (`pkg/apis/*/v1/defaults.go` and the
//! declarative `+default` markers), the parts of the registry strategies' `PrepareForCreate`
//! that users see (Job selector, Namespace finalizer, Pod status), the visible effects of the
//! default admission plugins on Pods (ServiceAccount, Priority, DefaultTolerationSeconds), the
//! v1 conversion quirks that show up in `kubectl get -o yaml` (`serviceAccount` mirroring,
//! `volumeClaimTemplates` apiVersion/kind) and the always-present empty structs Go serializes
//! (`resources: {}`, `status.loadBalancer: {}`).
//!
//! It runs on create and on every update or patch result, before validation, so every rule
//! only fills what is unset (missing or `null`; for Go non-pointer strings and numbers also
//! `""` and `0`) and applying it twice equals applying it once. Upstream also rewrites a few
//! values whatever the user sent, and so does this module: the Namespace label
//! `kubernetes.io/metadata.name`, the deprecated Pod `serviceAccount` (mirrors
//! `serviceAccountName`), a Service's `sessionAffinityConfig` when `sessionAffinity` is
//! `None`, and `apiVersion`/`kind` of StatefulSet `volumeClaimTemplates`.
//!
//! Not defaulted here (documented gaps):
//! - kinds with no defaults upstream: ConfigMap (its `data: {}` default is invisible),
//!   ServiceAccount, Event (core and events.k8s.io), Lease, ControllerRevision,
//!   PodDisruptionBudget, ResourceQuota, Role, ClusterRole, Ingress (apart from
//!   `status.loadBalancer: {}`);
//! - allocation left to the caller: Service `clusterIP`/`clusterIPs` and `nodePort`s,
//!   `healthCheckNodePort`; `ipFamilies`/`ipFamilyPolicy` are only filled once a ClusterIP
//!   (or `None`) is present;
//! - the ServiceAccount admission's `kube-api-access-*` projected token volume and mounts;
//! - Pod priority for a `priorityClassName` other than the two built-in system classes (the
//!   caller must resolve PriorityClass objects), and a global default PriorityClass;
//! - quantity canonicalization (`SetDefaults_ResourceList` rounds to milli units; values are
//!   kept as sent), `metadata.creationTimestamp: null` in templates, `status: {}`;
//! - `PrepareForCreate` details: Pod `mutatePodAffinity` (matchLabelKeys merging), AppArmor
//!   annotation/field sync, status reset on create (existing status values are kept);
//! - feature-gated defaults that are off by default in 1.33 (pod-level resources, image
//!   volumes, StatefulSet `maxUnavailable`, HPA tolerance, host ports in templates) and the
//!   deprecated in-tree volume sources' defaults (iSCSI, RBD, ScaleIO, AzureDisk).

use serde_json::{Map, Value, json};
use std::collections::{BTreeMap, BTreeSet};

type Obj = Map<String, Value>;

/// Applies kube-apiserver 1.33's defaults for `group`/`resource` (group `""` is core,
/// `resource` is the plural) to `obj` in place. Objects that are not JSON objects, and fields
/// of an unexpected JSON type, are left for validation to report.
pub fn apply_defaults(group: &str, resource: &str, obj: &mut Value) {
    let Some(o) = obj.as_object_mut() else {
        return;
    };
    match (group, resource) {
        ("", "pods") => pod(o),
        ("", "podtemplates") => {
            if let Some(t) = child_or_create(o, "template") {
                pod_template(t);
            }
        }
        ("", "replicationcontrollers") => replication_controller(o),
        ("", "services") => service(o),
        ("", "namespaces") => namespace(o),
        ("", "secrets") => default_str(o, "type", "Opaque"),
        ("", "endpoints") => endpoints(o),
        ("", "nodes") => node(o),
        ("", "persistentvolumeclaims") => pvc(o),
        ("", "persistentvolumes") => pv(o),
        ("", "limitranges") => limit_range(o),
        ("apps", "deployments") => deployment(o),
        ("apps", "replicasets") => replica_set(o),
        ("apps", "statefulsets") => stateful_set(o),
        ("apps", "daemonsets") => daemon_set(o),
        ("batch", "jobs") => job(o),
        ("batch", "cronjobs") => cron_job(o),
        ("autoscaling", "horizontalpodautoscalers") => hpa(o),
        ("networking.k8s.io", "networkpolicies") => network_policy(o),
        ("networking.k8s.io", "ingresses") => {
            if let Some(lb) = child_or_create(o, "status") {
                default_ptr(lb, "loadBalancer", json!({}));
            }
        }
        ("networking.k8s.io", "ingressclasses") => {
            if let Some(p) = child(o, "spec").and_then(|s| child(s, "parameters")) {
                default_ptr(p, "scope", json!("Cluster"));
            }
        }
        ("discovery.k8s.io", "endpointslices") => {
            for p in each_obj(o, "ports") {
                default_ptr(p, "name", json!(""));
                default_ptr(p, "protocol", json!("TCP"));
            }
        }
        ("rbac.authorization.k8s.io", "rolebindings" | "clusterrolebindings") => binding(o),
        ("storage.k8s.io", "storageclasses") => {
            default_ptr(o, "reclaimPolicy", json!("Delete"));
            default_ptr(o, "volumeBindingMode", json!("Immediate"));
        }
        ("scheduling.k8s.io", "priorityclasses") => {
            default_ptr(o, "preemptionPolicy", json!("PreemptLowerPriority"));
        }
        _ => {}
    }
}

// ---------------------------------------------------------------------------------------------
// JSON helpers with Go's zero-value semantics.

/// A pointer field: unset when missing or `null`.
fn is_unset(o: &Obj, k: &str) -> bool {
    matches!(o.get(k), None | Some(Value::Null))
}

/// A non-pointer string: unset when missing, `null` or `""`.
fn is_empty_str(o: &Obj, k: &str) -> bool {
    match o.get(k) {
        None | Some(Value::Null) => true,
        Some(Value::String(s)) => s.is_empty(),
        _ => false,
    }
}

/// A non-pointer number: unset when missing, `null` or `0`.
fn is_zero_num(o: &Obj, k: &str) -> bool {
    match o.get(k) {
        None | Some(Value::Null) => true,
        Some(Value::Number(n)) => n.as_f64() == Some(0.0),
        _ => false,
    }
}

/// A slice or map: empty when missing, `null`, `[]` or `{}`.
fn is_empty_collection(o: &Obj, k: &str) -> bool {
    match o.get(k) {
        None | Some(Value::Null) => true,
        Some(Value::Array(a)) => a.is_empty(),
        Some(Value::Object(m)) => m.is_empty(),
        _ => false,
    }
}

fn default_ptr(o: &mut Obj, k: &str, v: Value) {
    if is_unset(o, k) {
        o.insert(k.to_string(), v);
    }
}

fn default_str(o: &mut Obj, k: &str, v: &str) {
    if is_empty_str(o, k) {
        o.insert(k.to_string(), Value::from(v));
    }
}

fn default_num(o: &mut Obj, k: &str, v: i64) {
    if is_zero_num(o, k) {
        o.insert(k.to_string(), Value::from(v));
    }
}

fn str_of<'a>(o: &'a Obj, k: &str) -> &'a str {
    o.get(k).and_then(Value::as_str).unwrap_or("")
}

fn child<'a>(o: &'a mut Obj, k: &str) -> Option<&'a mut Obj> {
    o.get_mut(k)?.as_object_mut()
}

/// The object at `k`, created (as Go's zero struct) when missing or `null`; `None` when the
/// field holds another JSON type.
fn child_or_create<'a>(o: &'a mut Obj, k: &str) -> Option<&'a mut Obj> {
    if is_unset(o, k) {
        o.insert(k.to_string(), Value::Object(Map::new()));
    }
    o.get_mut(k)?.as_object_mut()
}

fn each_obj<'a>(o: &'a mut Obj, k: &str) -> impl Iterator<Item = &'a mut Obj> {
    o.get_mut(k)
        .and_then(Value::as_array_mut)
        .into_iter()
        .flatten()
        .filter_map(Value::as_object_mut)
}

fn meta_str(o: &Obj, k: &str) -> String {
    o.get("metadata")
        .and_then(Value::as_object)
        .map(|m| str_of(m, k).to_string())
        .unwrap_or_default()
}

// ---------------------------------------------------------------------------------------------
// Pods and pod templates.

const CONTAINER_LISTS: [&str; 3] = ["initContainers", "containers", "ephemeralContainers"];

/// `SetDefaults_PodSpec` and everything nested in a PodSpec (containers, volumes), plus the
/// v1 conversion's `serviceAccount` mirror. Applies to pods and to every pod template.
fn pod_spec(spec: &mut Obj) {
    default_str(spec, "dnsPolicy", "ClusterFirst");
    default_str(spec, "restartPolicy", "Always");
    default_ptr(spec, "securityContext", json!({}));
    default_ptr(spec, "terminationGracePeriodSeconds", json!(30));
    default_str(spec, "schedulerName", "default-scheduler");
    mirror_service_account(spec);
    for v in each_obj(spec, "volumes") {
        volume(v);
    }
    for list in CONTAINER_LISTS {
        for c in each_obj(spec, list) {
            container(c);
        }
    }
}

/// v1 ↔ internal conversion: `serviceAccountName` wins, `serviceAccount` is its mirror.
fn mirror_service_account(spec: &mut Obj) {
    if is_empty_str(spec, "serviceAccountName") && !is_empty_str(spec, "serviceAccount") {
        let sa = spec.get("serviceAccount").cloned().unwrap_or(Value::Null);
        spec.insert("serviceAccountName".into(), sa);
    }
    if !is_empty_str(spec, "serviceAccountName") {
        let sa = spec
            .get("serviceAccountName")
            .cloned()
            .unwrap_or(Value::Null);
        spec.insert("serviceAccount".into(), sa);
    }
}

fn pod_template(t: &mut Obj) {
    if let Some(spec) = child_or_create(t, "spec") {
        pod_spec(spec);
    }
}

/// The template at `spec.template` of a workload (a non-pointer struct upstream).
fn workload_template(spec: &mut Obj) {
    if let Some(t) = child_or_create(spec, "template") {
        pod_template(t);
    }
}

fn container(c: &mut Obj) {
    if is_empty_str(c, "imagePullPolicy") {
        let policy = if image_pulls_always(str_of(c, "image")) {
            "Always"
        } else {
            "IfNotPresent"
        };
        c.insert("imagePullPolicy".into(), Value::from(policy));
    }
    default_str(c, "terminationMessagePath", "/dev/termination-log");
    default_str(c, "terminationMessagePolicy", "File");
    // A non-pointer struct: Go always serializes it.
    default_ptr(c, "resources", json!({}));
    for p in each_obj(c, "ports") {
        default_str(p, "protocol", "TCP");
    }
    for e in each_obj(c, "env") {
        if let Some(fr) = child(e, "valueFrom").and_then(|vf| child(vf, "fieldRef")) {
            default_str(fr, "apiVersion", "v1");
        }
    }
    for k in ["livenessProbe", "readinessProbe", "startupProbe"] {
        if let Some(p) = child(c, k) {
            probe(p);
        }
    }
    if let Some(lc) = child(c, "lifecycle") {
        for k in ["postStart", "preStop"] {
            if let Some(h) = child(lc, k).and_then(|h| child(h, "httpGet")) {
                http_get(h);
            }
        }
    }
}

fn probe(p: &mut Obj) {
    default_num(p, "timeoutSeconds", 1);
    default_num(p, "periodSeconds", 10);
    default_num(p, "successThreshold", 1);
    default_num(p, "failureThreshold", 3);
    if let Some(h) = child(p, "httpGet") {
        http_get(h);
    }
    if let Some(g) = child(p, "grpc") {
        default_ptr(g, "service", json!(""));
    }
}

fn http_get(h: &mut Obj) {
    default_str(h, "path", "/");
    default_str(h, "scheme", "HTTP");
}

fn field_ref_items(o: &mut Obj) {
    for item in each_obj(o, "items") {
        if let Some(fr) = child(item, "fieldRef") {
            default_str(fr, "apiVersion", "v1");
        }
    }
}

fn volume(v: &mut Obj) {
    if !v.iter().any(|(k, val)| k != "name" && !val.is_null()) {
        v.insert("emptyDir".into(), json!({}));
    }
    if let Some(hp) = child(v, "hostPath") {
        default_ptr(hp, "type", json!(""));
    }
    for k in ["secret", "configMap", "downwardAPI", "projected"] {
        if let Some(src) = child(v, k) {
            default_ptr(src, "defaultMode", json!(420));
        }
    }
    if let Some(d) = child(v, "downwardAPI") {
        field_ref_items(d);
    }
    if let Some(p) = child(v, "projected") {
        for s in each_obj(p, "sources") {
            if let Some(d) = child(s, "downwardAPI") {
                field_ref_items(d);
            }
            if let Some(t) = child(s, "serviceAccountToken") {
                default_ptr(t, "expirationSeconds", json!(3600));
            }
        }
    }
    if let Some(t) = child(v, "ephemeral").and_then(|e| child(e, "volumeClaimTemplate"))
        && let Some(spec) = child_or_create(t, "spec")
    {
        pvc_spec(spec);
    }
}

const TAINT_NOT_READY: &str = "node.kubernetes.io/not-ready";
const TAINT_UNREACHABLE: &str = "node.kubernetes.io/unreachable";

fn pod(o: &mut Obj) {
    let mirror = o
        .get("metadata")
        .and_then(|m| m.get("annotations"))
        .and_then(|a| a.get("kubernetes.io/config.mirror"))
        .is_some();
    let created = o
        .get("metadata")
        .and_then(|m| m.get("creationTimestamp"))
        .cloned()
        .unwrap_or(Value::Null);
    let Some(spec) = child_or_create(o, "spec") else {
        return;
    };
    pod_spec(spec);
    // SetDefaults_Pod: requests default to limits (pods only, not templates).
    for list in ["containers", "initContainers"] {
        for c in each_obj(spec, list) {
            if let Some(res) = child(c, "resources") {
                requests_from_limits(res);
            }
        }
    }
    default_ptr(spec, "enableServiceLinks", json!(true));
    if spec.get("hostNetwork") == Some(&Value::Bool(true)) {
        for list in ["containers", "initContainers"] {
            for c in each_obj(spec, list) {
                for p in each_obj(c, "ports") {
                    if is_zero_num(p, "hostPort")
                        && let Some(cp) = p.get("containerPort").cloned()
                    {
                        p.insert("hostPort".into(), cp);
                    }
                }
            }
        }
    }
    // ServiceAccount admission (mirror pods are exempt).
    if !mirror && is_empty_str(spec, "serviceAccountName") {
        spec.insert("serviceAccountName".into(), json!("default"));
        mirror_service_account(spec);
    }
    // Priority admission, without a global default PriorityClass.
    let priority = match str_of(spec, "priorityClassName") {
        "" => Some(0),
        "system-node-critical" => Some(2_000_001_000),
        "system-cluster-critical" => Some(2_000_000_000),
        _ => None,
    };
    if let Some(p) = priority {
        default_ptr(spec, "priority", json!(p));
        default_ptr(spec, "preemptionPolicy", json!("PreemptLowerPriority"));
    }
    default_toleration_seconds(spec);
    let qos = qos_class(spec);
    let gated = spec
        .get("schedulingGates")
        .and_then(Value::as_array)
        .is_some_and(|g| !g.is_empty());
    // PrepareForCreate: status.
    let Some(status) = child_or_create(o, "status") else {
        return;
    };
    default_str(status, "phase", "Pending");
    default_str(status, "qosClass", qos);
    if gated {
        if is_unset(status, "conditions") {
            status.insert("conditions".into(), json!([]));
        }
        if let Some(conds) = status.get_mut("conditions").and_then(Value::as_array_mut) {
            let scheduled = conds
                .iter()
                .any(|c| c.get("type").and_then(Value::as_str) == Some("PodScheduled"));
            if !scheduled {
                conds.push(json!({
                    "type": "PodScheduled",
                    "status": "False",
                    "lastProbeTime": null,
                    "lastTransitionTime": created,
                    "reason": "SchedulingGated",
                    "message": "Scheduling is blocked due to non-empty scheduling gates",
                }));
            }
        }
    }
}

fn requests_from_limits(res: &mut Obj) {
    let Some(limits) = res.get("limits").and_then(Value::as_object).cloned() else {
        return;
    };
    let missing: Vec<(String, Value)> = {
        let requests = res.get("requests").and_then(Value::as_object);
        limits
            .into_iter()
            .filter(|(k, _)| !requests.is_some_and(|r| r.contains_key(k)))
            .collect()
    };
    if missing.is_empty() {
        return;
    }
    if let Some(requests) = child_or_create(res, "requests") {
        requests.extend(missing);
    }
}

/// The DefaultTolerationSeconds admission plugin (300 s for not-ready and unreachable).
fn default_toleration_seconds(spec: &mut Obj) {
    if is_unset(spec, "tolerations") {
        spec.insert("tolerations".into(), json!([]));
    }
    let Some(tols) = spec.get_mut("tolerations").and_then(Value::as_array_mut) else {
        return;
    };
    let (mut not_ready, mut unreachable) = (false, false);
    for t in tols.iter() {
        let key = t.get("key").and_then(Value::as_str).unwrap_or("");
        let effect = t.get("effect").and_then(Value::as_str).unwrap_or("");
        if effect == "NoExecute" || effect.is_empty() {
            not_ready |= key == TAINT_NOT_READY || key.is_empty();
            unreachable |= key == TAINT_UNREACHABLE || key.is_empty();
        }
    }
    for (tolerated, key) in [
        (not_ready, TAINT_NOT_READY),
        (unreachable, TAINT_UNREACHABLE),
    ] {
        if !tolerated {
            tols.push(json!({
                "key": key,
                "operator": "Exists",
                "effect": "NoExecute",
                "tolerationSeconds": 300,
            }));
        }
    }
}

/// `GetPodQOS` over containers and init containers (cpu and memory only).
pub(crate) fn qos_class(spec: &Obj) -> &'static str {
    let mut requests: BTreeMap<&str, i128> = BTreeMap::new();
    let mut limits: BTreeMap<&str, i128> = BTreeMap::new();
    let mut guaranteed = true;
    let containers = ["containers", "initContainers"]
        .into_iter()
        .filter_map(|k| spec.get(k).and_then(Value::as_array))
        .flatten();
    for c in containers {
        let res = c.get("resources").and_then(Value::as_object);
        let list = |k: &str| {
            res.and_then(|r| r.get(k))
                .and_then(Value::as_object)
                .into_iter()
                .flatten()
                .filter(|(name, _)| matches!(name.as_str(), "cpu" | "memory"))
                .filter_map(|(name, q)| Some((name.as_str(), parse_quantity(q)?)))
                .filter(|(_, n)| *n > 0)
        };
        for (name, n) in list("requests") {
            let e = requests.entry(name).or_insert(0);
            *e = e.saturating_add(n);
        }
        let mut found = BTreeSet::new();
        for (name, n) in list("limits") {
            found.insert(name);
            let e = limits.entry(name).or_insert(0);
            *e = e.saturating_add(n);
        }
        if !(found.contains("cpu") && found.contains("memory")) {
            guaranteed = false;
        }
    }
    if requests.is_empty() && limits.is_empty() {
        return "BestEffort";
    }
    if guaranteed && requests.iter().any(|(k, r)| limits.get(k) != Some(r)) {
        guaranteed = false;
    }
    if guaranteed && requests.len() == limits.len() {
        "Guaranteed"
    } else {
        "Burstable"
    }
}

/// A resource quantity in nano units (rounded up), saturating; `None` when malformed.
fn parse_quantity(v: &Value) -> Option<i128> {
    match v {
        Value::String(s) => parse_quantity_str(s.trim()),
        Value::Number(n) => parse_quantity_str(&n.to_string()),
        _ => None,
    }
}

fn parse_quantity_str(s: &str) -> Option<i128> {
    let (neg, s) = match s.as_bytes().first()? {
        b'-' => (true, &s[1..]),
        b'+' => (false, &s[1..]),
        _ => (false, s),
    };
    let num_len = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (num, suffix) = s.split_at(num_len);
    let (int_part, frac_part) = num.split_once('.').unwrap_or((num, ""));
    if int_part.is_empty() && frac_part.is_empty() || frac_part.contains('.') {
        return None;
    }
    let (exp10, exp2): (i64, u32) = match suffix {
        "" => (0, 0),
        "n" => (-9, 0),
        "u" => (-6, 0),
        "m" => (-3, 0),
        "k" => (3, 0),
        "M" => (6, 0),
        "G" => (9, 0),
        "T" => (12, 0),
        "P" => (15, 0),
        "E" => (18, 0),
        "Ki" => (0, 10),
        "Mi" => (0, 20),
        "Gi" => (0, 30),
        "Ti" => (0, 40),
        "Pi" => (0, 50),
        "Ei" => (0, 60),
        _ => {
            let e = suffix.strip_prefix(['e', 'E'])?;
            let digits = e.strip_prefix(['+', '-']).unwrap_or(e);
            if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            (e.parse::<i64>().ok()?.clamp(-100, 100), 0)
        }
    };
    let mut mantissa: i128 = 0;
    for b in int_part.bytes().chain(frac_part.bytes()) {
        mantissa = mantissa
            .saturating_mul(10)
            .saturating_add(i128::from(b - b'0'));
    }
    mantissa = mantissa.saturating_mul(1i128 << exp2);
    let shift = 9 + exp10 - frac_part.len() as i64;
    let value = if shift >= 0 {
        if shift > 38 {
            if mantissa == 0 { 0 } else { i128::MAX }
        } else {
            mantissa.saturating_mul(10i128.pow(shift as u32))
        }
    } else if -shift > 38 {
        i128::from(mantissa > 0)
    } else {
        let d = 10i128.pow((-shift) as u32);
        mantissa / d + i128::from(mantissa % d != 0)
    };
    Some(if neg { -value } else { value })
}

/// Whether `SetDefaults_Container` picks `Always`: the parsed reference has the tag `latest`,
/// or neither tag nor digest. A reference that does not parse gets `IfNotPresent`.
fn image_pulls_always(image: &str) -> bool {
    match parse_image(image) {
        Some((tag, has_digest)) => tag == Some("latest") || (tag.is_none() && !has_digest),
        None => false,
    }
}

/// (tag, has digest) of a container image reference, following the distribution reference
/// grammar as `ParseNormalizedNamed` does; `None` when it does not parse.
fn parse_image(image: &str) -> Option<(Option<&str>, bool)> {
    if image.len() == 64
        && image
            .bytes()
            .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    {
        return None;
    }
    let (rest, has_digest) = match image.split_once('@') {
        Some((name, digest)) => {
            if !valid_digest(digest) {
                return None;
            }
            (name, true)
        }
        None => (image, false),
    };
    let (name, tag) = match rest.rfind(':') {
        Some(i) if !rest[i + 1..].contains('/') => (&rest[..i], Some(&rest[i + 1..])),
        _ => (rest, None),
    };
    if tag.is_some_and(|t| !valid_tag(t)) || !valid_name(name) {
        return None;
    }
    Some((tag, has_digest))
}

fn valid_tag(t: &str) -> bool {
    let word = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    let bytes = t.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= 128
        && word(bytes[0])
        && bytes.iter().all(|&b| word(b) || b == b'.' || b == b'-')
}

fn valid_digest(d: &str) -> bool {
    let Some((alg, hex)) = d.split_once(':') else {
        return false;
    };
    let len = match alg {
        "sha256" => 64,
        "sha384" => 96,
        "sha512" => 128,
        _ => return false,
    };
    hex.len() == len && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

fn valid_name(name: &str) -> bool {
    let (domain, remote) = match name.split_once('/') {
        Some((first, rest))
            if first.contains(['.', ':'])
                || first == "localhost"
                || first.bytes().any(|b| b.is_ascii_uppercase()) =>
        {
            (Some(first), rest)
        }
        _ => (None, name),
    };
    let normalized_len = match domain {
        Some(d) => d.len() + 1 + remote.len(),
        None if remote.contains('/') => "docker.io/".len() + remote.len(),
        None => "docker.io/library/".len() + remote.len(),
    };
    normalized_len <= 255
        && domain.is_none_or(valid_domain)
        && !remote.is_empty()
        && remote.split('/').all(valid_path_component)
}

fn valid_domain(d: &str) -> bool {
    let (host, port) = match d.rsplit_once(':') {
        Some((h, p)) if !h.ends_with(']') || d.starts_with('[') => (h, Some(p)),
        _ => (d, None),
    };
    if port.is_some_and(|p| p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit())) {
        return false;
    }
    if host.starts_with('[') && host.ends_with(']') {
        return host.len() > 2;
    }
    !host.is_empty()
        && host.split('.').all(|label| {
            let b = label.as_bytes();
            !b.is_empty()
                && b[0].is_ascii_alphanumeric()
                && b[b.len() - 1].is_ascii_alphanumeric()
                && b.iter().all(|&c| c.is_ascii_alphanumeric() || c == b'-')
        })
}

/// `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*`
fn valid_path_component(c: &str) -> bool {
    let b = c.as_bytes();
    let alnum = |x: u8| x.is_ascii_lowercase() || x.is_ascii_digit();
    if b.is_empty() || !alnum(b[0]) || !alnum(b[b.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < b.len() {
        if alnum(b[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < b.len() && !alnum(b[i]) {
            i += 1;
        }
        let sep = &c[start..i];
        let ok = sep == "." || sep == "_" || sep == "__" || sep.bytes().all(|x| x == b'-');
        if !ok {
            return false;
        }
    }
    true
}

// ---------------------------------------------------------------------------------------------
// Workloads.

fn replication_controller(o: &mut Obj) {
    let Some(spec) = child_or_create(o, "spec") else {
        return;
    };
    default_ptr(spec, "replicas", json!(1));
    let mut template_labels = None;
    if let Some(t) = child(spec, "template") {
        pod_template(t);
        template_labels = t
            .get("metadata")
            .and_then(|m| m.get("labels"))
            .filter(|l| l.as_object().is_some_and(|m| !m.is_empty()))
            .cloned();
    }
    let Some(labels) = template_labels else {
        return;
    };
    if is_empty_collection(spec, "selector") {
        spec.insert("selector".into(), labels.clone());
    }
    if let Some(meta) = child_or_create(o, "metadata")
        && is_empty_collection(meta, "labels")
    {
        meta.insert("labels".into(), labels);
    }
}

fn deployment(o: &mut Obj) {
    let Some(spec) = child_or_create(o, "spec") else {
        return;
    };
    default_ptr(spec, "replicas", json!(1));
    if let Some(strategy) = child_or_create(spec, "strategy") {
        default_str(strategy, "type", "RollingUpdate");
        if str_of(strategy, "type") == "RollingUpdate"
            && let Some(ru) = child_or_create(strategy, "rollingUpdate")
        {
            default_ptr(ru, "maxUnavailable", json!("25%"));
            default_ptr(ru, "maxSurge", json!("25%"));
        }
    }
    default_ptr(spec, "revisionHistoryLimit", json!(10));
    default_ptr(spec, "progressDeadlineSeconds", json!(600));
    workload_template(spec);
}

fn replica_set(o: &mut Obj) {
    let Some(spec) = child_or_create(o, "spec") else {
        return;
    };
    default_ptr(spec, "replicas", json!(1));
    workload_template(spec);
}

fn stateful_set(o: &mut Obj) {
    let Some(spec) = child_or_create(o, "spec") else {
        return;
    };
    default_str(spec, "podManagementPolicy", "OrderedReady");
    if let Some(us) = child_or_create(spec, "updateStrategy") {
        if is_empty_str(us, "type") {
            us.insert("type".into(), json!("RollingUpdate"));
            default_ptr(us, "rollingUpdate", json!({}));
        }
        if str_of(us, "type") == "RollingUpdate"
            && let Some(ru) = child(us, "rollingUpdate")
        {
            default_ptr(ru, "partition", json!(0));
        }
    }
    if let Some(p) = child_or_create(spec, "persistentVolumeClaimRetentionPolicy") {
        default_str(p, "whenDeleted", "Retain");
        default_str(p, "whenScaled", "Retain");
    }
    default_ptr(spec, "replicas", json!(1));
    default_ptr(spec, "revisionHistoryLimit", json!(10));
    workload_template(spec);
    for vct in each_obj(spec, "volumeClaimTemplates") {
        // The apps/v1 conversion sets these on every claim template.
        vct.insert("apiVersion".into(), json!("v1"));
        vct.insert("kind".into(), json!("PersistentVolumeClaim"));
        pvc(vct);
    }
}

fn daemon_set(o: &mut Obj) {
    let Some(spec) = child_or_create(o, "spec") else {
        return;
    };
    if let Some(us) = child_or_create(spec, "updateStrategy") {
        default_str(us, "type", "RollingUpdate");
        if str_of(us, "type") == "RollingUpdate"
            && let Some(ru) = child_or_create(us, "rollingUpdate")
        {
            default_ptr(ru, "maxUnavailable", json!(1));
            default_ptr(ru, "maxSurge", json!(0));
        }
    }
    default_ptr(spec, "revisionHistoryLimit", json!(10));
    workload_template(spec);
}

fn job(o: &mut Obj) {
    let name = meta_str(o, "name");
    let uid = meta_str(o, "uid");
    let Some(spec) = child_or_create(o, "spec") else {
        return;
    };
    if is_unset(spec, "completions") && is_unset(spec, "parallelism") {
        spec.insert("completions".into(), json!(1));
    }
    default_ptr(spec, "parallelism", json!(1));
    if is_unset(spec, "backoffLimit") {
        let limit = if is_unset(spec, "backoffLimitPerIndex") {
            6
        } else {
            i64::from(i32::MAX)
        };
        spec.insert("backoffLimit".into(), json!(limit));
    }
    default_ptr(spec, "completionMode", json!("NonIndexed"));
    default_ptr(spec, "suspend", json!(false));
    let has_failure_policy = !is_unset(spec, "podFailurePolicy");
    if let Some(pfp) = child(spec, "podFailurePolicy") {
        for rule in each_obj(pfp, "rules") {
            for pattern in each_obj(rule, "onPodConditions") {
                default_str(pattern, "status", "True");
            }
        }
    }
    let replacement = if has_failure_policy {
        "Failed"
    } else {
        "TerminatingOrFailed"
    };
    default_ptr(spec, "podReplacementPolicy", json!(replacement));
    default_ptr(spec, "manualSelector", json!(false));
    workload_template(spec);
    // PrepareForCreate: the generated selector, unless the user manages it.
    if spec.get("manualSelector") != Some(&Value::Bool(true)) && !uid.is_empty() {
        generate_job_selector(spec, &name, &uid);
    }
    // SetDefaults_Job: the Job's labels default to its template's (as read back).
    let template_labels = spec
        .get("template")
        .and_then(|t| t.get("metadata"))
        .and_then(|m| m.get("labels"))
        .filter(|l| l.as_object().is_some_and(|m| !m.is_empty()))
        .cloned();
    if let Some(labels) = template_labels
        && let Some(meta) = child_or_create(o, "metadata")
        && is_empty_collection(meta, "labels")
    {
        meta.insert("labels".into(), labels);
    }
}

fn generate_job_selector(spec: &mut Obj, name: &str, uid: &str) {
    if let Some(labels) = child_or_create(spec, "template")
        .and_then(|t| child_or_create(t, "metadata"))
        .and_then(|m| child_or_create(m, "labels"))
    {
        let mut add = |k: &str, v: &str| {
            if !v.is_empty() && !labels.contains_key(k) {
                labels.insert(k.into(), json!(v));
            }
        };
        add("job-name", name);
        add("batch.kubernetes.io/job-name", name);
        add("controller-uid", uid);
        add("batch.kubernetes.io/controller-uid", uid);
    }
    if let Some(ml) =
        child_or_create(spec, "selector").and_then(|s| child_or_create(s, "matchLabels"))
        && !ml.contains_key("batch.kubernetes.io/controller-uid")
    {
        ml.insert("batch.kubernetes.io/controller-uid".into(), json!(uid));
    }
}

/// `SetDefaults_CronJob`; the job template only gets the pod template defaults (upstream
/// does not run `SetDefaults_Job` on a JobTemplateSpec).
fn cron_job(o: &mut Obj) {
    let Some(spec) = child_or_create(o, "spec") else {
        return;
    };
    default_str(spec, "concurrencyPolicy", "Allow");
    default_ptr(spec, "suspend", json!(false));
    default_ptr(spec, "successfulJobsHistoryLimit", json!(3));
    default_ptr(spec, "failedJobsHistoryLimit", json!(1));
    if let Some(js) =
        child_or_create(spec, "jobTemplate").and_then(|jt| child_or_create(jt, "spec"))
    {
        workload_template(js);
    }
}

// ---------------------------------------------------------------------------------------------
// Services and networking.

fn service(o: &mut Obj) {
    let Some(spec) = child_or_create(o, "spec") else {
        return;
    };
    default_str(spec, "sessionAffinity", "None");
    match str_of(spec, "sessionAffinity") {
        "None" => {
            spec.remove("sessionAffinityConfig");
        }
        "ClientIP" => {
            let has_timeout = spec
                .get("sessionAffinityConfig")
                .and_then(|c| c.get("clientIP"))
                .and_then(|c| c.get("timeoutSeconds"))
                .is_some_and(|t| !t.is_null());
            if !has_timeout {
                spec.insert(
                    "sessionAffinityConfig".into(),
                    json!({"clientIP": {"timeoutSeconds": 10800}}),
                );
            }
        }
        _ => {}
    }
    default_str(spec, "type", "ClusterIP");
    for p in each_obj(spec, "ports") {
        default_str(p, "protocol", "TCP");
        let unset_target = match p.get("targetPort") {
            None | Some(Value::Null) => true,
            Some(Value::Number(n)) => n.as_f64() == Some(0.0),
            Some(Value::String(s)) => s.is_empty(),
            _ => false,
        };
        if unset_target {
            let port = p.get("port").filter(|v| v.is_number()).cloned();
            p.insert("targetPort".into(), port.unwrap_or(json!(0)));
        }
    }
    let ty = str_of(spec, "type").to_string();
    let externally_accessible = ty == "LoadBalancer"
        || ty == "NodePort"
        || (ty == "ClusterIP" && !is_empty_collection(spec, "externalIPs"));
    if externally_accessible {
        default_str(spec, "externalTrafficPolicy", "Cluster");
    }
    if matches!(ty.as_str(), "ClusterIP" | "NodePort" | "LoadBalancer") {
        default_ptr(spec, "internalTrafficPolicy", json!("Cluster"));
    }
    if ty == "LoadBalancer" {
        default_ptr(spec, "allocateLoadBalancerNodePorts", json!(true));
    }
    if ty != "ExternalName" {
        service_ip_families(spec);
    }
    let Some(status) = child_or_create(o, "status") else {
        return;
    };
    let Some(lb) = child_or_create(status, "loadBalancer") else {
        return;
    };
    if ty == "LoadBalancer" {
        for ing in each_obj(lb, "ingress") {
            if !is_empty_str(ing, "ip") {
                default_ptr(ing, "ipMode", json!("VIP"));
            }
        }
    }
}

/// The parts of the Service REST allocator's IP family defaulting that do not allocate:
/// `clusterIPs` ↔ `clusterIP`, then policy and families once a ClusterIP (or `None`) is set.
/// A single-stack IPv4 cluster is assumed for families that cannot be inferred.
fn service_ip_families(spec: &mut Obj) {
    if !is_empty_str(spec, "clusterIP") && is_empty_collection(spec, "clusterIPs") {
        let ip = spec.get("clusterIP").cloned().unwrap_or(Value::Null);
        spec.insert("clusterIPs".into(), json!([ip]));
    }
    if is_empty_str(spec, "clusterIP") {
        let first = spec
            .get("clusterIPs")
            .and_then(Value::as_array)
            .and_then(|a| a.first())
            .filter(|v| v.as_str().is_some_and(|s| !s.is_empty()))
            .cloned();
        match first {
            Some(ip) => {
                spec.insert("clusterIP".into(), ip);
            }
            None => return,
        }
    }
    let headless = str_of(spec, "clusterIP") == "None";
    let selectorless = is_empty_collection(spec, "selector");
    if is_unset(spec, "ipFamilyPolicy") {
        let policy = if headless && selectorless {
            "RequireDualStack"
        } else {
            "SingleStack"
        };
        spec.insert("ipFamilyPolicy".into(), json!(policy));
    }
    let policy = str_of(spec, "ipFamilyPolicy").to_string();
    if is_unset(spec, "ipFamilies") {
        spec.insert("ipFamilies".into(), json!([]));
    }
    let ips: Vec<String> = spec
        .get("clusterIPs")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|v| v.as_str().map(str::to_string))
        .collect();
    let Some(families) = spec.get_mut("ipFamilies").and_then(Value::as_array_mut) else {
        return;
    };
    for (i, ip) in ips.iter().enumerate() {
        if ip == "None" {
            break;
        }
        if i >= families.len() {
            let family = if ip.contains(':') { "IPv6" } else { "IPv4" };
            families.push(json!(family));
        }
    }
    if families.is_empty() {
        families.push(json!("IPv4"));
    }
    if headless && selectorless && families.len() < 2 && policy != "SingleStack" {
        let other = if families[0] == json!("IPv6") {
            "IPv4"
        } else {
            "IPv6"
        };
        families.push(json!(other));
    }
}

fn network_policy(o: &mut Obj) {
    let Some(spec) = child_or_create(o, "spec") else {
        return;
    };
    for (rules, peers) in [("ingress", "ports"), ("egress", "ports")] {
        for rule in each_obj(spec, rules) {
            for p in each_obj(rule, peers) {
                default_ptr(p, "protocol", json!("TCP"));
            }
        }
    }
    if is_empty_collection(spec, "policyTypes") {
        let mut types = vec![json!("Ingress")];
        if !is_empty_collection(spec, "egress") {
            types.push(json!("Egress"));
        }
        spec.insert("policyTypes".into(), Value::Array(types));
    }
}

fn endpoints(o: &mut Obj) {
    for subset in each_obj(o, "subsets") {
        for p in each_obj(subset, "ports") {
            default_str(p, "protocol", "TCP");
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Namespaces, nodes, storage, policy, RBAC, autoscaling.

fn namespace(o: &mut Obj) {
    let name = meta_str(o, "name");
    let terminating = o
        .get("metadata")
        .and_then(|m| m.get("deletionTimestamp"))
        .is_some_and(|t| !t.is_null());
    if !name.is_empty()
        && let Some(labels) =
            child_or_create(o, "metadata").and_then(|m| child_or_create(m, "labels"))
    {
        labels.insert("kubernetes.io/metadata.name".into(), json!(name));
    }
    // PrepareForCreate requires the `kubernetes` finalizer; the namespace controller removes
    // it only once the namespace is terminating, so it is not re-added then.
    if !terminating && let Some(spec) = child_or_create(o, "spec") {
        if is_unset(spec, "finalizers") {
            spec.insert("finalizers".into(), json!([]));
        }
        if let Some(f) = spec.get_mut("finalizers").and_then(Value::as_array_mut)
            && !f.iter().any(|x| x == "kubernetes")
        {
            f.push(json!("kubernetes"));
        }
    }
    if let Some(status) = child_or_create(o, "status") {
        default_str(status, "phase", "Active");
    }
}

fn node(o: &mut Obj) {
    let Some(status) = child(o, "status") else {
        return;
    };
    if is_unset(status, "allocatable")
        && let Some(cap) = status.get("capacity").filter(|c| c.is_object()).cloned()
    {
        status.insert("allocatable".into(), cap);
    }
}

fn pvc_spec(spec: &mut Obj) {
    default_ptr(spec, "volumeMode", json!("Filesystem"));
}

fn pvc(o: &mut Obj) {
    if let Some(spec) = child_or_create(o, "spec") {
        pvc_spec(spec);
    }
    if let Some(status) = child_or_create(o, "status") {
        default_str(status, "phase", "Pending");
    }
}

fn pv(o: &mut Obj) {
    if let Some(spec) = child_or_create(o, "spec") {
        default_str(spec, "persistentVolumeReclaimPolicy", "Retain");
        default_ptr(spec, "volumeMode", json!("Filesystem"));
        if let Some(hp) = child(spec, "hostPath") {
            default_ptr(hp, "type", json!(""));
        }
    }
    if let Some(status) = child_or_create(o, "status") {
        default_str(status, "phase", "Pending");
    }
}

fn limit_range(o: &mut Obj) {
    let Some(spec) = child(o, "spec") else {
        return;
    };
    for item in each_obj(spec, "limits") {
        if str_of(item, "type") != "Container" {
            continue;
        }
        let get = |item: &Obj, k: &str| item.get(k).and_then(Value::as_object).cloned();
        let fill = |item: &mut Obj, target: &str, from: Option<Obj>| {
            let Some(from) = from else { return };
            let missing: Vec<(String, Value)> = {
                let existing = item.get(target).and_then(Value::as_object);
                from.into_iter()
                    .filter(|(k, _)| !existing.is_some_and(|e| e.contains_key(k)))
                    .collect()
            };
            if !missing.is_empty()
                && let Some(t) = child_or_create(item, target)
            {
                t.extend(missing);
            }
        };
        let max = get(item, "max");
        fill(item, "default", max);
        let default = get(item, "default");
        fill(item, "defaultRequest", default);
        let min = get(item, "min");
        fill(item, "defaultRequest", min);
    }
}

fn binding(o: &mut Obj) {
    if let Some(rr) = child_or_create(o, "roleRef") {
        default_str(rr, "apiGroup", "rbac.authorization.k8s.io");
    }
    for s in each_obj(o, "subjects") {
        if matches!(str_of(s, "kind"), "User" | "Group") {
            default_str(s, "apiGroup", "rbac.authorization.k8s.io");
        }
    }
}

fn hpa_rules(rules: &mut Obj, up: bool) {
    default_ptr(rules, "selectPolicy", json!("Max"));
    if up {
        default_ptr(rules, "stabilizationWindowSeconds", json!(0));
        default_ptr(
            rules,
            "policies",
            json!([
                {"type": "Pods", "value": 4, "periodSeconds": 15},
                {"type": "Percent", "value": 100, "periodSeconds": 15},
            ]),
        );
    } else {
        default_ptr(
            rules,
            "policies",
            json!([{"type": "Percent", "value": 100, "periodSeconds": 15}]),
        );
    }
}

/// autoscaling/v2 (the served version).
fn hpa(o: &mut Obj) {
    let Some(spec) = child_or_create(o, "spec") else {
        return;
    };
    default_ptr(spec, "minReplicas", json!(1));
    if is_empty_collection(spec, "metrics") {
        spec.insert(
            "metrics".into(),
            json!([{
                "type": "Resource",
                "resource": {
                    "name": "cpu",
                    "target": {"type": "Utilization", "averageUtilization": 80},
                },
            }]),
        );
    }
    if let Some(b) = child(spec, "behavior") {
        for (k, up) in [("scaleUp", true), ("scaleDown", false)] {
            if let Some(r) = child_or_create(b, k) {
                hpa_rules(r, up);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(group: &str, resource: &str, input: &Value) -> Value {
        let mut v = input.clone();
        apply_defaults(group, resource, &mut v);
        v
    }

    /// Expected output, idempotency, and defaulting the output changes nothing.
    fn check(group: &str, resource: &str, input: Value, expected: Value) {
        let once = run(group, resource, &input);
        assert_eq!(
            once,
            expected,
            "{group}/{resource}: {}",
            serde_json::to_string_pretty(&once).unwrap_or_default()
        );
        let twice = run(group, resource, &once);
        assert_eq!(twice, once, "{group}/{resource} not idempotent");
    }

    fn template_spec_defaults(extra: Value) -> Value {
        let mut base = json!({
            "dnsPolicy": "ClusterFirst",
            "restartPolicy": "Always",
            "securityContext": {},
            "terminationGracePeriodSeconds": 30,
            "schedulerName": "default-scheduler",
        });
        if let (Some(b), Some(e)) = (base.as_object_mut(), extra.as_object()) {
            for (k, v) in e {
                b.insert(k.clone(), v.clone());
            }
        }
        base
    }

    fn c_defaults(name: &str, image: &str, pull: &str) -> Value {
        json!({
            "name": name, "image": image, "imagePullPolicy": pull,
            "terminationMessagePath": "/dev/termination-log",
            "terminationMessagePolicy": "File", "resources": {},
        })
    }

    fn default_tolerations() -> Value {
        json!([
            {"key": TAINT_NOT_READY, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300},
            {"key": TAINT_UNREACHABLE, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300},
        ])
    }

    #[test]
    fn pods() {
        let pod_spec_admitted = |containers: Value, extra: Value| {
            let mut s = template_spec_defaults(json!({
                "containers": containers,
                "enableServiceLinks": true,
                "serviceAccountName": "default",
                "serviceAccount": "default",
                "priority": 0,
                "preemptionPolicy": "PreemptLowerPriority",
                "tolerations": default_tolerations(),
            }));
            if let (Some(b), Some(e)) = (s.as_object_mut(), extra.as_object()) {
                for (k, v) in e {
                    b.insert(k.clone(), v.clone());
                }
            }
            s
        };
        let cases = vec![
            // Minimal pod.
            (
                json!({"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c", "image": "nginx"}]}}),
                json!({
                    "metadata": {"name": "p"},
                    "spec": pod_spec_admitted(json!([c_defaults("c", "nginx", "Always")]), json!({})),
                    "status": {"phase": "Pending", "qosClass": "BestEffort"},
                }),
            ),
            // Limits become requests; Guaranteed; tagged image; probes; ports; env; volumes.
            (
                json!({"spec": {
                    "containers": [{
                        "name": "c", "image": "registry.k8s.io/pause:3.9",
                        "resources": {"limits": {"cpu": "500m", "memory": "1Gi"}},
                        "ports": [{"containerPort": 80}],
                        "env": [{"name": "N", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}],
                        "livenessProbe": {"httpGet": {"port": 80}},
                        "readinessProbe": {"grpc": {"port": 9000}, "periodSeconds": 5},
                        "lifecycle": {"preStop": {"httpGet": {"port": 8080, "path": "/stop"}}},
                    }],
                    "volumes": [
                        {"name": "a"},
                        {"name": "b", "configMap": {"name": "cm"}},
                        {"name": "c", "secret": {"secretName": "s"}},
                        {"name": "d", "hostPath": {"path": "/x"}},
                        {"name": "e", "projected": {"sources": [{"serviceAccountToken": {"path": "t"}}, {"downwardAPI": {"items": [{"path": "l", "fieldRef": {"fieldPath": "metadata.labels"}}]}}]}},
                        {"name": "f", "ephemeral": {"volumeClaimTemplate": {"spec": {"accessModes": ["ReadWriteOnce"]}}}},
                    ],
                }}),
                json!({
                    "spec": pod_spec_admitted(json!([{
                        "name": "c", "image": "registry.k8s.io/pause:3.9",
                        "imagePullPolicy": "IfNotPresent",
                        "terminationMessagePath": "/dev/termination-log",
                        "terminationMessagePolicy": "File",
                        "resources": {"limits": {"cpu": "500m", "memory": "1Gi"}, "requests": {"cpu": "500m", "memory": "1Gi"}},
                        "ports": [{"containerPort": 80, "protocol": "TCP"}],
                        "env": [{"name": "N", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name", "apiVersion": "v1"}}}],
                        "livenessProbe": {"httpGet": {"port": 80, "path": "/", "scheme": "HTTP"}, "timeoutSeconds": 1, "periodSeconds": 10, "successThreshold": 1, "failureThreshold": 3},
                        "readinessProbe": {"grpc": {"port": 9000, "service": ""}, "periodSeconds": 5, "timeoutSeconds": 1, "successThreshold": 1, "failureThreshold": 3},
                        "lifecycle": {"preStop": {"httpGet": {"port": 8080, "path": "/stop", "scheme": "HTTP"}}},
                    }]), json!({"volumes": [
                        {"name": "a", "emptyDir": {}},
                        {"name": "b", "configMap": {"name": "cm", "defaultMode": 420}},
                        {"name": "c", "secret": {"secretName": "s", "defaultMode": 420}},
                        {"name": "d", "hostPath": {"path": "/x", "type": ""}},
                        {"name": "e", "projected": {"defaultMode": 420, "sources": [{"serviceAccountToken": {"path": "t", "expirationSeconds": 3600}}, {"downwardAPI": {"items": [{"path": "l", "fieldRef": {"fieldPath": "metadata.labels", "apiVersion": "v1"}}]}}]}},
                        {"name": "f", "ephemeral": {"volumeClaimTemplate": {"spec": {"accessModes": ["ReadWriteOnce"], "volumeMode": "Filesystem"}}}},
                    ]})),
                    "status": {"phase": "Pending", "qosClass": "Guaranteed"},
                }),
            ),
            // Burstable; host network ports; system priority class; user toleration for everything.
            (
                json!({"spec": {
                    "hostNetwork": true, "priorityClassName": "system-node-critical",
                    "tolerations": [{"operator": "Exists"}],
                    "serviceAccount": "builder",
                    "initContainers": [{"name": "i", "image": "busybox@sha256:0000000000000000000000000000000000000000000000000000000000000000", "resources": {"requests": {"memory": "10Mi"}}}],
                    "containers": [{"name": "c", "image": "nginx:latest", "ports": [{"containerPort": 8080}]}],
                }}),
                json!({
                    "spec": template_spec_defaults(json!({
                        "hostNetwork": true, "priorityClassName": "system-node-critical",
                        "priority": 2000001000, "preemptionPolicy": "PreemptLowerPriority",
                        "tolerations": [{"operator": "Exists"}],
                        "serviceAccount": "builder", "serviceAccountName": "builder",
                        "enableServiceLinks": true,
                        "initContainers": [{
                            "name": "i", "image": "busybox@sha256:0000000000000000000000000000000000000000000000000000000000000000",
                            "imagePullPolicy": "IfNotPresent", "terminationMessagePath": "/dev/termination-log",
                            "terminationMessagePolicy": "File", "resources": {"requests": {"memory": "10Mi"}},
                        }],
                        "containers": [{
                            "name": "c", "image": "nginx:latest", "imagePullPolicy": "Always",
                            "terminationMessagePath": "/dev/termination-log", "terminationMessagePolicy": "File",
                            "resources": {}, "ports": [{"containerPort": 8080, "protocol": "TCP", "hostPort": 8080}],
                        }],
                    })),
                    "status": {"phase": "Pending", "qosClass": "Burstable"},
                }),
            ),
            // Scheduling gates add the PodScheduled condition; mirror pods skip the SA.
            (
                json!({"metadata": {"creationTimestamp": "2025-01-01T00:00:00Z", "annotations": {"kubernetes.io/config.mirror": "x"}},
                       "spec": {"schedulingGates": [{"name": "g"}], "containers": [{"name": "c", "image": "a/b:v1"}]}}),
                json!({
                    "metadata": {"creationTimestamp": "2025-01-01T00:00:00Z", "annotations": {"kubernetes.io/config.mirror": "x"}},
                    "spec": template_spec_defaults(json!({
                        "schedulingGates": [{"name": "g"}],
                        "containers": [c_defaults("c", "a/b:v1", "IfNotPresent")],
                        "enableServiceLinks": true, "priority": 0,
                        "preemptionPolicy": "PreemptLowerPriority",
                        "tolerations": default_tolerations(),
                    })),
                    "status": {"phase": "Pending", "qosClass": "BestEffort", "conditions": [{
                        "type": "PodScheduled", "status": "False", "lastProbeTime": null,
                        "lastTransitionTime": "2025-01-01T00:00:00Z", "reason": "SchedulingGated",
                        "message": "Scheduling is blocked due to non-empty scheduling gates",
                    }]},
                }),
            ),
            // Partial pod: no spec at all.
            (
                json!({"metadata": {"name": "p"}}),
                json!({
                    "metadata": {"name": "p"},
                    "spec": template_spec_defaults(json!({
                        "enableServiceLinks": true, "serviceAccountName": "default",
                        "serviceAccount": "default", "priority": 0,
                        "preemptionPolicy": "PreemptLowerPriority",
                        "tolerations": default_tolerations(),
                    })),
                    "status": {"phase": "Pending", "qosClass": "BestEffort"},
                }),
            ),
        ];
        for (input, expected) in cases {
            check("", "pods", input, expected);
        }
    }

    #[test]
    fn image_pull_policy() {
        let cases = [
            ("nginx", true),
            ("nginx:latest", true),
            ("nginx:1.25", false),
            ("docker.io/library/nginx", true),
            ("localhost:5000/app", true),
            ("localhost:5000/app:v2", false),
            ("gcr.io/proj/app:latest", true),
            (
                "app@sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
                false,
            ),
            (
                "app:latest@sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
                true,
            ),
            ("app@sha256:short", false),
            ("", false),
            ("Nginx", false),
            ("MyRegistry.io/app", true),
            ("my_registry/app", true),
            ("a//b", false),
            ("app:-bad", false),
            ("[::1]:5000/app", true),
        ];
        for (image, always) in cases {
            assert_eq!(image_pulls_always(image), always, "{image}");
        }
    }

    #[test]
    fn quantities() {
        let cases = [
            ("1", Some(1_000_000_000)),
            ("500m", Some(500_000_000)),
            ("0.5", Some(500_000_000)),
            ("1Ki", Some(1_024_000_000_000)),
            ("1e3", Some(1_000_000_000_000)),
            ("1E", Some(1_000_000_000_000_000_000_000_000_000)),
            ("0.0000000001", Some(1)),
            ("-1m", Some(-1_000_000)),
            ("0", Some(0)),
            ("abc", None),
            (".", None),
            ("1Zi", None),
        ];
        for (q, want) in cases {
            assert_eq!(parse_quantity(&json!(q)), want, "{q}");
        }
        assert_eq!(parse_quantity(&json!(2)), Some(2_000_000_000));
    }

    #[test]
    fn qos() {
        let spec = |containers: Value| {
            json!({"containers": containers})
                .as_object()
                .cloned()
                .unwrap_or_default()
        };
        let cases = [
            (json!([{"name": "a"}]), "BestEffort"),
            (
                json!([{"resources": {"requests": {"cpu": "0"}, "limits": {"memory": "0"}}}]),
                "BestEffort",
            ),
            (
                json!([{"resources": {"requests": {"cpu": "1", "memory": "1Gi"}, "limits": {"cpu": "1000m", "memory": "1024Mi"}}}]),
                "Guaranteed",
            ),
            (
                json!([{"resources": {"requests": {"cpu": "1", "memory": "1Gi"}, "limits": {"cpu": "2", "memory": "1Gi"}}}]),
                "Burstable",
            ),
            (
                json!([{"resources": {"limits": {"cpu": "1", "memory": "1Gi"}, "requests": {"cpu": "1", "memory": "1Gi"}}}, {"name": "b"}]),
                "Burstable",
            ),
            (
                json!([{"resources": {"requests": {"ephemeral-storage": "1Gi"}}}]),
                "BestEffort",
            ),
        ];
        for (containers, want) in cases {
            assert_eq!(qos_class(&spec(containers.clone())), want, "{containers}");
        }
    }

    #[test]
    fn workloads() {
        let tpl = |extra: Value| {
            let mut spec = template_spec_defaults(
                json!({"containers": [c_defaults("c", "x:1", "IfNotPresent")]}),
            );
            if let (Some(m), Some(e)) = (spec.as_object_mut(), extra.as_object()) {
                m.extend(e.clone());
            }
            json!({ "spec": spec })
        };
        let input_tpl = json!({"spec": {"containers": [{"name": "c", "image": "x:1"}]}});
        let cases = vec![
            (
                "apps",
                "deployments",
                json!({"spec": {"template": input_tpl}}),
                json!({"spec": {
                    "replicas": 1,
                    "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"}},
                    "revisionHistoryLimit": 10, "progressDeadlineSeconds": 600,
                    "template": tpl(json!({})),
                }}),
            ),
            (
                "apps",
                "deployments",
                json!({"spec": {"strategy": {"type": "Recreate"}, "template": input_tpl}}),
                json!({"spec": {
                    "replicas": 1, "strategy": {"type": "Recreate"},
                    "revisionHistoryLimit": 10, "progressDeadlineSeconds": 600,
                    "template": tpl(json!({})),
                }}),
            ),
            (
                "apps",
                "deployments",
                json!({}),
                json!({"spec": {
                    "replicas": 1,
                    "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"}},
                    "revisionHistoryLimit": 10, "progressDeadlineSeconds": 600,
                    "template": {"spec": template_spec_defaults(json!({}))},
                }}),
            ),
            (
                "apps",
                "replicasets",
                json!({"spec": {"template": input_tpl}}),
                json!({"spec": {"replicas": 1, "template": tpl(json!({}))}}),
            ),
            (
                "apps",
                "statefulsets",
                json!({"spec": {"template": input_tpl, "volumeClaimTemplates": [{"metadata": {"name": "data"}, "spec": {"accessModes": ["ReadWriteOnce"]}}]}}),
                json!({"spec": {
                    "podManagementPolicy": "OrderedReady",
                    "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"partition": 0}},
                    "persistentVolumeClaimRetentionPolicy": {"whenDeleted": "Retain", "whenScaled": "Retain"},
                    "replicas": 1, "revisionHistoryLimit": 10,
                    "template": tpl(json!({})),
                    "volumeClaimTemplates": [{
                        "apiVersion": "v1", "kind": "PersistentVolumeClaim",
                        "metadata": {"name": "data"},
                        "spec": {"accessModes": ["ReadWriteOnce"], "volumeMode": "Filesystem"},
                        "status": {"phase": "Pending"},
                    }],
                }}),
            ),
            // An explicit RollingUpdate type without rollingUpdate stays without it.
            (
                "apps",
                "statefulsets",
                json!({"spec": {"updateStrategy": {"type": "RollingUpdate"}, "template": input_tpl}}),
                json!({"spec": {
                    "podManagementPolicy": "OrderedReady",
                    "updateStrategy": {"type": "RollingUpdate"},
                    "persistentVolumeClaimRetentionPolicy": {"whenDeleted": "Retain", "whenScaled": "Retain"},
                    "replicas": 1, "revisionHistoryLimit": 10,
                    "template": tpl(json!({})),
                }}),
            ),
            (
                "apps",
                "daemonsets",
                json!({"spec": {"template": input_tpl}}),
                json!({"spec": {
                    "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 0}},
                    "revisionHistoryLimit": 10, "template": tpl(json!({})),
                }}),
            ),
            (
                "",
                "replicationcontrollers",
                json!({"spec": {"template": {"metadata": {"labels": {"app": "a"}}, "spec": {"containers": [{"name": "c", "image": "x:1"}]}}}}),
                json!({
                    "metadata": {"labels": {"app": "a"}},
                    "spec": {
                        "replicas": 1, "selector": {"app": "a"},
                        "template": {"metadata": {"labels": {"app": "a"}}, "spec": tpl(json!({}))["spec"].clone()},
                    },
                }),
            ),
            // Empty template labels copy nothing (Go would copy an empty map, which is omitted).
            (
                "",
                "replicationcontrollers",
                json!({"spec": {"replicas": 2, "template": {"metadata": {"labels": {}}, "spec": {"containers": [{"name": "c", "image": "x:1"}]}}}}),
                json!({"spec": {
                    "replicas": 2,
                    "template": {"metadata": {"labels": {}}, "spec": tpl(json!({}))["spec"].clone()},
                }}),
            ),
            (
                "",
                "podtemplates",
                json!({"template": input_tpl}),
                json!({"template": tpl(json!({}))}),
            ),
            (
                "batch",
                "cronjobs",
                json!({"spec": {"schedule": "* * * * *", "jobTemplate": {"spec": {"template": {"spec": {"restartPolicy": "Never", "containers": [{"name": "c", "image": "x:1"}]}}}}}}),
                json!({"spec": {
                    "schedule": "* * * * *", "concurrencyPolicy": "Allow", "suspend": false,
                    "successfulJobsHistoryLimit": 3, "failedJobsHistoryLimit": 1,
                    "jobTemplate": {"spec": {"template": tpl(json!({"restartPolicy": "Never"}))}},
                }}),
            ),
        ];
        for (group, resource, input, expected) in cases {
            check(group, resource, input, expected);
        }
    }

    #[test]
    fn jobs() {
        let uid = "0d7f4f3c-1111-2222-3333-444455556666";
        let gen_labels = json!({
            "job-name": "pi", "batch.kubernetes.io/job-name": "pi",
            "controller-uid": uid, "batch.kubernetes.io/controller-uid": uid,
        });
        let spec_defaults = |extra: Value| {
            let mut m = json!({
                "completions": 1, "parallelism": 1, "backoffLimit": 6,
                "completionMode": "NonIndexed", "suspend": false,
                "podReplacementPolicy": "TerminatingOrFailed", "manualSelector": false,
                "selector": {"matchLabels": {"batch.kubernetes.io/controller-uid": uid}},
            });
            if let (Some(b), Some(e)) = (m.as_object_mut(), extra.as_object()) {
                b.extend(e.clone());
            }
            m
        };
        let tpl_spec = template_spec_defaults(
            json!({"restartPolicy": "Never", "containers": [c_defaults("c", "perl:5.34", "IfNotPresent")]}),
        );
        let cases = vec![
            (
                json!({"metadata": {"name": "pi", "uid": uid}, "spec": {"template": {"spec": {"restartPolicy": "Never", "containers": [{"name": "c", "image": "perl:5.34"}]}}}}),
                json!({
                    "metadata": {"name": "pi", "uid": uid, "labels": gen_labels},
                    "spec": spec_defaults(json!({"template": {"metadata": {"labels": gen_labels}, "spec": tpl_spec}})),
                }),
            ),
            // Parallelism only; per-index backoff; failure policy; labels kept.
            (
                json!({"metadata": {"name": "pi", "uid": uid, "labels": {"own": "x"}}, "spec": {
                    "parallelism": 3, "backoffLimitPerIndex": 1, "completionMode": "Indexed", "completions": 5,
                    "podFailurePolicy": {"rules": [{"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget"}]}]},
                    "template": {"metadata": {"labels": {"app": "pi"}}, "spec": {"restartPolicy": "Never", "containers": [{"name": "c", "image": "perl:5.34"}]}},
                }}),
                json!({
                    "metadata": {"name": "pi", "uid": uid, "labels": {"own": "x"}},
                    "spec": spec_defaults(json!({
                        "parallelism": 3, "completions": 5, "backoffLimitPerIndex": 1,
                        "backoffLimit": 2147483647, "completionMode": "Indexed",
                        "podFailurePolicy": {"rules": [{"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget", "status": "True"}]}]},
                        "podReplacementPolicy": "Failed",
                        "template": {"metadata": {"labels": {
                            "app": "pi", "job-name": "pi", "batch.kubernetes.io/job-name": "pi",
                            "controller-uid": uid, "batch.kubernetes.io/controller-uid": uid,
                        }}, "spec": tpl_spec},
                    })),
                }),
            ),
            // Manual selector: nothing generated; template labels become the Job's.
            (
                json!({"metadata": {"name": "pi", "uid": uid}, "spec": {
                    "manualSelector": true, "completions": 2,
                    "selector": {"matchLabels": {"app": "pi"}},
                    "template": {"metadata": {"labels": {"app": "pi"}}, "spec": {"restartPolicy": "Never", "containers": [{"name": "c", "image": "perl:5.34"}]}},
                }}),
                json!({
                    "metadata": {"name": "pi", "uid": uid, "labels": {"app": "pi"}},
                    "spec": {
                        "manualSelector": true, "completions": 2, "parallelism": 1, "backoffLimit": 6,
                        "completionMode": "NonIndexed", "suspend": false,
                        "podReplacementPolicy": "TerminatingOrFailed",
                        "selector": {"matchLabels": {"app": "pi"}},
                        "template": {"metadata": {"labels": {"app": "pi"}}, "spec": tpl_spec},
                    },
                }),
            ),
        ];
        for (input, expected) in cases {
            check("batch", "jobs", input, expected);
        }
    }

    #[test]
    fn services() {
        let cases = vec![
            (
                json!({"spec": {"selector": {"app": "a"}, "ports": [{"port": 80}]}}),
                json!({
                    "spec": {
                        "selector": {"app": "a"},
                        "ports": [{"port": 80, "protocol": "TCP", "targetPort": 80}],
                        "sessionAffinity": "None", "type": "ClusterIP",
                        "internalTrafficPolicy": "Cluster",
                    },
                    "status": {"loadBalancer": {}},
                }),
            ),
            (
                json!({"spec": {"clusterIP": "10.0.0.10", "ports": [{"port": 53, "protocol": "UDP", "targetPort": "dns"}, {"port": 80, "targetPort": 0}]}}),
                json!({
                    "spec": {
                        "clusterIP": "10.0.0.10", "clusterIPs": ["10.0.0.10"],
                        "ports": [{"port": 53, "protocol": "UDP", "targetPort": "dns"}, {"port": 80, "protocol": "TCP", "targetPort": 80}],
                        "sessionAffinity": "None", "type": "ClusterIP",
                        "internalTrafficPolicy": "Cluster",
                        "ipFamilyPolicy": "SingleStack", "ipFamilies": ["IPv4"],
                    },
                    "status": {"loadBalancer": {}},
                }),
            ),
            (
                json!({"spec": {"type": "LoadBalancer", "sessionAffinity": "ClientIP", "clusterIPs": ["fd00::1"]}, "status": {"loadBalancer": {"ingress": [{"ip": "1.2.3.4"}, {"hostname": "lb"}]}}}),
                json!({
                    "spec": {
                        "type": "LoadBalancer", "sessionAffinity": "ClientIP",
                        "sessionAffinityConfig": {"clientIP": {"timeoutSeconds": 10800}},
                        "clusterIP": "fd00::1", "clusterIPs": ["fd00::1"],
                        "externalTrafficPolicy": "Cluster", "internalTrafficPolicy": "Cluster",
                        "allocateLoadBalancerNodePorts": true,
                        "ipFamilyPolicy": "SingleStack", "ipFamilies": ["IPv6"],
                    },
                    "status": {"loadBalancer": {"ingress": [{"ip": "1.2.3.4", "ipMode": "VIP"}, {"hostname": "lb"}]}},
                }),
            ),
            (
                json!({"spec": {"clusterIP": "None", "selector": {"app": "db"}, "sessionAffinityConfig": {"clientIP": {"timeoutSeconds": 5}}}}),
                json!({
                    "spec": {
                        "clusterIP": "None", "clusterIPs": ["None"], "selector": {"app": "db"},
                        "sessionAffinity": "None", "type": "ClusterIP",
                        "internalTrafficPolicy": "Cluster",
                        "ipFamilyPolicy": "SingleStack", "ipFamilies": ["IPv4"],
                    },
                    "status": {"loadBalancer": {}},
                }),
            ),
            (
                json!({"spec": {"clusterIP": "None"}}),
                json!({
                    "spec": {
                        "clusterIP": "None", "clusterIPs": ["None"],
                        "sessionAffinity": "None", "type": "ClusterIP",
                        "internalTrafficPolicy": "Cluster",
                        "ipFamilyPolicy": "RequireDualStack", "ipFamilies": ["IPv4", "IPv6"],
                    },
                    "status": {"loadBalancer": {}},
                }),
            ),
            (
                json!({"spec": {"type": "ExternalName", "externalName": "example.com"}}),
                json!({
                    "spec": {"type": "ExternalName", "externalName": "example.com", "sessionAffinity": "None"},
                    "status": {"loadBalancer": {}},
                }),
            ),
            (
                json!({"spec": {"externalIPs": ["1.1.1.1"]}}),
                json!({
                    "spec": {
                        "externalIPs": ["1.1.1.1"], "sessionAffinity": "None", "type": "ClusterIP",
                        "externalTrafficPolicy": "Cluster", "internalTrafficPolicy": "Cluster",
                    },
                    "status": {"loadBalancer": {}},
                }),
            ),
        ];
        for (input, expected) in cases {
            check("", "services", input, expected);
        }
    }

    #[test]
    fn other_kinds() {
        let cases = vec![
            (
                "",
                "namespaces",
                json!({"metadata": {"name": "team-a"}}),
                json!({
                    "metadata": {"name": "team-a", "labels": {"kubernetes.io/metadata.name": "team-a"}},
                    "spec": {"finalizers": ["kubernetes"]},
                    "status": {"phase": "Active"},
                }),
            ),
            (
                "",
                "namespaces",
                json!({"metadata": {"name": "t", "deletionTimestamp": "2025-01-01T00:00:00Z"}, "spec": {}, "status": {"phase": "Terminating"}}),
                json!({
                    "metadata": {"name": "t", "deletionTimestamp": "2025-01-01T00:00:00Z", "labels": {"kubernetes.io/metadata.name": "t"}},
                    "spec": {},
                    "status": {"phase": "Terminating"},
                }),
            ),
            (
                "",
                "secrets",
                json!({"data": {}}),
                json!({"data": {}, "type": "Opaque"}),
            ),
            (
                "",
                "configmaps",
                json!({"data": {"a": "b"}}),
                json!({"data": {"a": "b"}}),
            ),
            ("", "serviceaccounts", json!({}), json!({})),
            ("", "events", json!({"reason": "x"}), json!({"reason": "x"})),
            (
                "",
                "endpoints",
                json!({"subsets": [{"ports": [{"port": 80}]}]}),
                json!({"subsets": [{"ports": [{"port": 80, "protocol": "TCP"}]}]}),
            ),
            (
                "discovery.k8s.io",
                "endpointslices",
                json!({"addressType": "IPv4", "ports": [{"port": 80}]}),
                json!({"addressType": "IPv4", "ports": [{"port": 80, "name": "", "protocol": "TCP"}]}),
            ),
            (
                "",
                "persistentvolumeclaims",
                json!({"spec": {"accessModes": ["ReadWriteOnce"]}}),
                json!({"spec": {"accessModes": ["ReadWriteOnce"], "volumeMode": "Filesystem"}, "status": {"phase": "Pending"}}),
            ),
            (
                "",
                "persistentvolumes",
                json!({"spec": {"hostPath": {"path": "/d"}}}),
                json!({
                    "spec": {"hostPath": {"path": "/d", "type": ""}, "persistentVolumeReclaimPolicy": "Retain", "volumeMode": "Filesystem"},
                    "status": {"phase": "Pending"},
                }),
            ),
            (
                "",
                "nodes",
                json!({"status": {"capacity": {"cpu": "4"}}}),
                json!({"status": {"capacity": {"cpu": "4"}, "allocatable": {"cpu": "4"}}}),
            ),
            ("", "nodes", json!({}), json!({})),
            (
                "",
                "limitranges",
                json!({"spec": {"limits": [{"type": "Container", "max": {"cpu": "2"}, "min": {"memory": "1Mi"}}, {"type": "Pod", "max": {"cpu": "4"}}]}}),
                json!({"spec": {"limits": [
                    {"type": "Container", "max": {"cpu": "2"}, "min": {"memory": "1Mi"}, "default": {"cpu": "2"}, "defaultRequest": {"cpu": "2", "memory": "1Mi"}},
                    {"type": "Pod", "max": {"cpu": "4"}},
                ]}}),
            ),
            (
                "networking.k8s.io",
                "networkpolicies",
                json!({"spec": {"podSelector": {}, "ingress": [{"ports": [{"port": 80}]}], "egress": [{"ports": [{"port": 53, "protocol": "UDP"}]}]}}),
                json!({"spec": {
                    "podSelector": {},
                    "ingress": [{"ports": [{"port": 80, "protocol": "TCP"}]}],
                    "egress": [{"ports": [{"port": 53, "protocol": "UDP"}]}],
                    "policyTypes": ["Ingress", "Egress"],
                }}),
            ),
            (
                "networking.k8s.io",
                "networkpolicies",
                json!({"spec": {"podSelector": {}}}),
                json!({"spec": {"podSelector": {}, "policyTypes": ["Ingress"]}}),
            ),
            (
                "networking.k8s.io",
                "ingresses",
                json!({"spec": {"rules": []}}),
                json!({"spec": {"rules": []}, "status": {"loadBalancer": {}}}),
            ),
            (
                "networking.k8s.io",
                "ingressclasses",
                json!({"spec": {"controller": "x/y", "parameters": {"kind": "K", "name": "n"}}}),
                json!({"spec": {"controller": "x/y", "parameters": {"kind": "K", "name": "n", "scope": "Cluster"}}}),
            ),
            (
                "rbac.authorization.k8s.io",
                "clusterrolebindings",
                json!({"roleRef": {"kind": "ClusterRole", "name": "view"}, "subjects": [{"kind": "User", "name": "u"}, {"kind": "ServiceAccount", "name": "s", "namespace": "n"}, {"kind": "Group", "name": "g"}]}),
                json!({"roleRef": {"kind": "ClusterRole", "name": "view", "apiGroup": "rbac.authorization.k8s.io"}, "subjects": [
                    {"kind": "User", "name": "u", "apiGroup": "rbac.authorization.k8s.io"},
                    {"kind": "ServiceAccount", "name": "s", "namespace": "n"},
                    {"kind": "Group", "name": "g", "apiGroup": "rbac.authorization.k8s.io"},
                ]}),
            ),
            (
                "storage.k8s.io",
                "storageclasses",
                json!({"provisioner": "p"}),
                json!({"provisioner": "p", "reclaimPolicy": "Delete", "volumeBindingMode": "Immediate"}),
            ),
            (
                "scheduling.k8s.io",
                "priorityclasses",
                json!({"value": 5}),
                json!({"value": 5, "preemptionPolicy": "PreemptLowerPriority"}),
            ),
            (
                "autoscaling",
                "horizontalpodautoscalers",
                json!({"spec": {"maxReplicas": 5}}),
                json!({"spec": {
                    "maxReplicas": 5, "minReplicas": 1,
                    "metrics": [{"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 80}}}],
                }}),
            ),
            (
                "autoscaling",
                "horizontalpodautoscalers",
                json!({"spec": {"maxReplicas": 5, "minReplicas": 2, "metrics": [{"type": "Pods"}], "behavior": {"scaleDown": {"stabilizationWindowSeconds": 60}}}}),
                json!({"spec": {
                    "maxReplicas": 5, "minReplicas": 2, "metrics": [{"type": "Pods"}],
                    "behavior": {
                        "scaleDown": {"stabilizationWindowSeconds": 60, "selectPolicy": "Max", "policies": [{"type": "Percent", "value": 100, "periodSeconds": 15}]},
                        "scaleUp": {"selectPolicy": "Max", "stabilizationWindowSeconds": 0, "policies": [
                            {"type": "Pods", "value": 4, "periodSeconds": 15},
                            {"type": "Percent", "value": 100, "periodSeconds": 15},
                        ]},
                    },
                }}),
            ),
            (
                "policy",
                "poddisruptionbudgets",
                json!({"spec": {}}),
                json!({"spec": {}}),
            ),
            (
                "example.com",
                "widgets",
                json!({"spec": {}}),
                json!({"spec": {}}),
            ),
        ];
        for (group, resource, input, expected) in cases {
            check(group, resource, input, expected);
        }
    }

    /// Objects whose every defaulted field is already set to a non-default value come out
    /// unchanged.
    #[test]
    fn never_overwrites_user_values() {
        let container = json!({
            "name": "c", "image": "nginx", "imagePullPolicy": "Never",
            "terminationMessagePath": "/tmp/log", "terminationMessagePolicy": "FallbackToLogsOnError",
            "resources": {"limits": {"cpu": "1"}, "requests": {"cpu": "500m"}},
            "ports": [{"containerPort": 53, "protocol": "UDP"}],
            "env": [{"name": "N", "valueFrom": {"fieldRef": {"apiVersion": "v2", "fieldPath": "x"}}}],
            "livenessProbe": {"httpGet": {"path": "/h", "scheme": "HTTPS", "port": 1}, "timeoutSeconds": 2, "periodSeconds": 3, "successThreshold": 4, "failureThreshold": 5},
            "startupProbe": {"grpc": {"port": 1, "service": "s"}, "timeoutSeconds": 2, "periodSeconds": 3, "successThreshold": 4, "failureThreshold": 5},
        });
        let pod_spec = json!({
            "dnsPolicy": "Default", "restartPolicy": "Never",
            "securityContext": {"runAsUser": 1}, "terminationGracePeriodSeconds": 0,
            "schedulerName": "mine", "serviceAccountName": "sa", "serviceAccount": "sa",
            "containers": [container],
            "volumes": [
                {"name": "a", "configMap": {"name": "x", "defaultMode": 256}},
                {"name": "b", "hostPath": {"path": "/", "type": "Directory"}},
            ],
        });
        let mut full_pod_spec = pod_spec.clone();
        if let Some(m) = full_pod_spec.as_object_mut() {
            m.extend(
                json!({
                    "enableServiceLinks": false, "priority": 0, "preemptionPolicy": "Never",
                    "tolerations": [{"operator": "Exists"}],
                })
                .as_object()
                .cloned()
                .unwrap_or_default(),
            );
        }
        let cases = vec![
            (
                "",
                "pods",
                json!({"spec": full_pod_spec, "status": {"phase": "Running", "qosClass": "Guaranteed"}}),
            ),
            (
                "apps",
                "deployments",
                json!({"spec": {
                    "replicas": 0, "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": "50%"}},
                    "revisionHistoryLimit": 1, "progressDeadlineSeconds": 30,
                    "template": {"spec": pod_spec},
                }}),
            ),
            (
                "apps",
                "statefulsets",
                json!({"spec": {
                    "replicas": 3, "podManagementPolicy": "Parallel",
                    "updateStrategy": {"type": "OnDelete"},
                    "persistentVolumeClaimRetentionPolicy": {"whenDeleted": "Delete", "whenScaled": "Delete"},
                    "revisionHistoryLimit": 2, "template": {"spec": pod_spec},
                }}),
            ),
            (
                "apps",
                "daemonsets",
                json!({"spec": {
                    "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "10%", "maxSurge": 2}},
                    "revisionHistoryLimit": 0, "template": {"spec": pod_spec},
                }}),
            ),
            (
                "batch",
                "jobs",
                json!({"metadata": {"labels": {"a": "b"}}, "spec": {
                    "completions": 3, "parallelism": 2, "backoffLimit": 0, "completionMode": "Indexed",
                    "suspend": true, "podReplacementPolicy": "Failed", "manualSelector": true,
                    "selector": {"matchLabels": {"a": "b"}},
                    "template": {"metadata": {"labels": {"a": "b"}}, "spec": pod_spec},
                }}),
            ),
            (
                "batch",
                "cronjobs",
                json!({"spec": {
                    "concurrencyPolicy": "Forbid", "suspend": true, "successfulJobsHistoryLimit": 0,
                    "failedJobsHistoryLimit": 0, "jobTemplate": {"spec": {"template": {"spec": pod_spec}}},
                }}),
            ),
            (
                "",
                "services",
                json!({"spec": {
                    "type": "NodePort", "sessionAffinity": "ClientIP",
                    "sessionAffinityConfig": {"clientIP": {"timeoutSeconds": 60}},
                    "ports": [{"port": 80, "protocol": "SCTP", "targetPort": 8080}],
                    "externalTrafficPolicy": "Local", "internalTrafficPolicy": "Local",
                    "clusterIP": "10.0.0.1", "clusterIPs": ["10.0.0.1"],
                    "ipFamilyPolicy": "PreferDualStack", "ipFamilies": ["IPv4"],
                }, "status": {"loadBalancer": {}}}),
            ),
            ("", "secrets", json!({"type": "kubernetes.io/tls"})),
            (
                "",
                "persistentvolumes",
                json!({"spec": {"persistentVolumeReclaimPolicy": "Delete", "volumeMode": "Block"}, "status": {"phase": "Bound"}}),
            ),
            (
                "",
                "persistentvolumeclaims",
                json!({"spec": {"volumeMode": "Block"}, "status": {"phase": "Bound"}}),
            ),
            (
                "",
                "namespaces",
                json!({"metadata": {"name": "n", "labels": {"kubernetes.io/metadata.name": "n"}}, "spec": {"finalizers": ["x", "kubernetes"]}, "status": {"phase": "Terminating"}}),
            ),
            (
                "networking.k8s.io",
                "networkpolicies",
                json!({"spec": {"policyTypes": ["Egress"], "ingress": [{"ports": [{"protocol": "UDP"}]}]}}),
            ),
            (
                "autoscaling",
                "horizontalpodautoscalers",
                json!({"spec": {"minReplicas": 3, "metrics": [{"type": "External"}], "behavior": {
                    "scaleUp": {"selectPolicy": "Min", "stabilizationWindowSeconds": 5, "policies": []},
                    "scaleDown": {"selectPolicy": "Disabled", "stabilizationWindowSeconds": 5, "policies": [{"type": "Pods", "value": 1, "periodSeconds": 60}]},
                }}}),
            ),
            (
                "storage.k8s.io",
                "storageclasses",
                json!({"reclaimPolicy": "Retain", "volumeBindingMode": "WaitForFirstConsumer"}),
            ),
        ];
        for (group, resource, input) in cases {
            let out = run(group, resource, &input);
            assert_eq!(
                out,
                input,
                "{group}/{resource}: {}",
                serde_json::to_string_pretty(&out).unwrap_or_default()
            );
        }
    }

    #[test]
    fn tolerates_malformed_input() {
        let inputs = [
            json!(null),
            json!("x"),
            json!({"spec": "x"}),
            json!({"spec": {"containers": "x", "volumes": [1, null], "tolerations": {}}}),
            json!({"spec": {"template": [], "jobTemplate": 3}, "metadata": 7}),
            json!({"spec": {"ports": [{"targetPort": true}], "clusterIPs": "x"}}),
        ];
        let kinds = [
            ("", "pods"),
            ("", "services"),
            ("", "namespaces"),
            ("", "replicationcontrollers"),
            ("apps", "deployments"),
            ("apps", "statefulsets"),
            ("apps", "daemonsets"),
            ("batch", "jobs"),
            ("batch", "cronjobs"),
            ("autoscaling", "horizontalpodautoscalers"),
            ("", "limitranges"),
        ];
        for (group, resource) in kinds {
            for input in &inputs {
                let once = run(group, resource, input);
                assert_eq!(
                    run(group, resource, &once),
                    once,
                    "{group}/{resource} {input}"
                );
            }
        }
    }
}
