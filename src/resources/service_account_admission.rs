//! kube-apiserver's ServiceAccount admission, the part users see on a created pod: unless
//! the pod or its ServiceAccount sets `automountServiceAccountToken: false`, the pod gets a
//! `kube-api-access-<suffix>` projected volume (a bound token that expires after 3607 s, the
//! cluster CA from the `kube-root-ca.crt` ConfigMap, the namespace from the downward API)
//! mounted read-only at `/var/run/secrets/kubernetes.io/serviceaccount` in every container.

use serde_json::{Value, json};

/// Where the token, CA and namespace are mounted.
pub const MOUNT_PATH: &str = "/var/run/secrets/kubernetes.io/serviceaccount";

/// Adds the token volume and mounts to `pod`. `service_account` is the pod's account as
/// stored (None when it does not exist yet); `suffix` names the volume.
pub fn add_token_volume(pod: &mut Value, service_account: Option<&Value>, suffix: &str) {
    let automount = |v: Option<&Value>| {
        v.and_then(|v| v.get("automountServiceAccountToken"))
            .and_then(Value::as_bool)
    };
    let spec = pod.get("spec");
    let wanted = automount(spec)
        .or_else(|| automount(service_account))
        .unwrap_or(true);
    if !wanted {
        return;
    }
    let Some(spec) = pod.get_mut("spec").and_then(Value::as_object_mut) else {
        return;
    };
    let mounted = |c: &Value| {
        c.get("volumeMounts")
            .and_then(Value::as_array)
            .is_some_and(|ms| {
                ms.iter()
                    .any(|m| m.get("mountPath").and_then(Value::as_str) == Some(MOUNT_PATH))
            })
    };
    let name = format!("kube-api-access-{suffix}");
    let volume = json!({
        "name": name,
        "projected": {
            "defaultMode": 420,
            "sources": [
                {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
                {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
                {"downwardAPI": {"items": [{"path": "namespace", "fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"}}]}},
            ],
        },
    });
    let mut added = false;
    for list in ["initContainers", "containers"] {
        if let Some(cs) = spec.get_mut(list).and_then(Value::as_array_mut) {
            for c in cs.iter_mut().filter(|c| !mounted(c)) {
                let Some(c) = c.as_object_mut() else { continue };
                let mounts = c.entry("volumeMounts").or_insert_with(|| json!([]));
                if let Some(m) = mounts.as_array_mut() {
                    m.push(json!({"name": name, "readOnly": true, "mountPath": MOUNT_PATH}));
                    added = true;
                }
            }
        }
    }
    if added {
        let volumes = spec.entry("volumes").or_insert_with(|| json!([]));
        if let Some(v) = volumes.as_array_mut() {
            v.push(volume);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_volume_mounted_in_every_container_unless_opted_out() {
        let mut pod = json!({"spec": {"containers": [{"name": "a"}, {"name": "b", "volumeMounts": [{"name": "x", "mountPath": "/x"}]}]}});
        add_token_volume(&mut pod, None, "abcde");
        assert_eq!(pod["spec"]["volumes"][0]["name"], "kube-api-access-abcde");
        assert_eq!(
            pod["spec"]["containers"][0]["volumeMounts"][0]["mountPath"],
            MOUNT_PATH
        );
        assert_eq!(
            pod["spec"]["containers"][1]["volumeMounts"][1]["name"],
            "kube-api-access-abcde"
        );
        assert_eq!(
            pod["spec"]["volumes"][0]["projected"]["sources"][0]["serviceAccountToken"]["expirationSeconds"],
            3607
        );
        let mut off =
            json!({"spec": {"automountServiceAccountToken": false, "containers": [{"name": "a"}]}});
        add_token_volume(&mut off, None, "abcde");
        assert!(off["spec"].get("volumes").is_none());
        let mut by_sa = json!({"spec": {"containers": [{"name": "a"}]}});
        add_token_volume(
            &mut by_sa,
            Some(&json!({"automountServiceAccountToken": false})),
            "abcde",
        );
        assert!(by_sa["spec"].get("volumes").is_none());
        // The pod's own setting wins over its account's.
        let mut on =
            json!({"spec": {"automountServiceAccountToken": true, "containers": [{"name": "a"}]}});
        add_token_volume(
            &mut on,
            Some(&json!({"automountServiceAccountToken": false})),
            "abcde",
        );
        assert!(on["spec"]["volumes"].is_array());
    }
}
