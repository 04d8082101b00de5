//! The `scale` subresource as pure functions: the autoscaling/v1 `Scale` view of a workload
//! and the label-selector string kube-apiserver puts in `status.selector`.

use serde_json::{Value, json};

/// `metav1.FormatLabelSelector`: `a=b,c in (x,y),d notin (z),e,!f`; a map selector (a
/// ReplicationController's) as `a=b,c=d`.
pub fn selector_string(selector: Option<&Value>) -> String {
    let Some(sel) = selector else {
        return String::new();
    };
    let mut parts: Vec<String> = Vec::new();
    let labels = sel.get("matchLabels").or_else(|| {
        // A bare map (ReplicationController) has no matchLabels/matchExpressions keys.
        (sel.get("matchExpressions").is_none()).then_some(sel)
    });
    if let Some(m) = labels.and_then(Value::as_object) {
        let mut pairs: Vec<(&String, &Value)> = m.iter().collect();
        pairs.sort_by(|a, b| a.0.cmp(b.0));
        for (k, v) in pairs {
            parts.push(format!("{k}={}", v.as_str().unwrap_or_default()));
        }
    }
    if let Some(exprs) = sel.get("matchExpressions").and_then(Value::as_array) {
        for e in exprs {
            let key = e.get("key").and_then(Value::as_str).unwrap_or_default();
            let mut values: Vec<&str> = e
                .get("values")
                .and_then(Value::as_array)
                .map(|a| a.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            values.sort();
            match e.get("operator").and_then(Value::as_str) {
                Some("In") => parts.push(format!("{key} in ({})", values.join(","))),
                Some("NotIn") => parts.push(format!("{key} notin ({})", values.join(","))),
                Some("Exists") => parts.push(key.to_string()),
                Some("DoesNotExist") => parts.push(format!("!{key}")),
                _ => {}
            }
        }
    }
    parts.join(",")
}

/// The Scale of a workload object.
pub fn scale_of(obj: &Value) -> Value {
    let meta = obj.get("metadata").cloned().unwrap_or_else(|| json!({}));
    let mut scale_meta = serde_json::Map::new();
    for k in [
        "name",
        "namespace",
        "uid",
        "resourceVersion",
        "creationTimestamp",
    ] {
        if let Some(v) = meta.get(k) {
            scale_meta.insert(k.into(), v.clone());
        }
    }
    let replicas = obj
        .pointer("/spec/replicas")
        .and_then(Value::as_i64)
        .unwrap_or(1);
    let status_replicas = obj
        .pointer("/status/replicas")
        .and_then(Value::as_i64)
        .unwrap_or(0);
    let mut status = json!({"replicas": status_replicas});
    let selector = selector_string(obj.pointer("/spec/selector"));
    if !selector.is_empty() {
        status["selector"] = json!(selector);
    }
    json!({
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": scale_meta,
        "spec": {"replicas": replicas},
        "status": status,
    })
}

/// The replica count a Scale body asks for: `Some(n)`, or an error text for kube-apiserver's
/// Invalid response.
pub fn requested_replicas(scale: &Value) -> Result<i64, String> {
    match scale.pointer("/spec/replicas") {
        None | Some(Value::Null) => Ok(0),
        Some(v) => match v.as_i64() {
            Some(n) if n >= 0 => Ok(n),
            Some(n) => Err(format!(
                "spec.replicas: Invalid value: {n}: must be greater than or equal to 0"
            )),
            None => Err(format!(
                "spec.replicas: Invalid value: {v}: must be an integer"
            )),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selectors_format_like_upstream() {
        assert_eq!(
            selector_string(Some(&json!({"matchLabels": {"b": "2", "a": "1"}}))),
            "a=1,b=2"
        );
        assert_eq!(
            selector_string(Some(
                &json!({"matchLabels": {"app": "web"}, "matchExpressions": [
                    {"key": "tier", "operator": "In", "values": ["front", "back"]},
                    {"key": "env", "operator": "NotIn", "values": ["dev"]},
                    {"key": "x", "operator": "Exists"},
                    {"key": "y", "operator": "DoesNotExist"}
                ]})
            )),
            "app=web,tier in (back,front),env notin (dev),x,!y"
        );
        assert_eq!(selector_string(Some(&json!({"app": "rc"}))), "app=rc");
        assert_eq!(selector_string(None), "");
    }

    #[test]
    fn scale_view_of_a_deployment() {
        let d = json!({"metadata": {"name": "web", "namespace": "a", "uid": "u", "resourceVersion": "7", "labels": {"x": "y"}},
            "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web"}}}, "status": {"replicas": 2}});
        let s = scale_of(&d);
        assert_eq!(s["spec"]["replicas"], 3);
        assert_eq!(s["status"], json!({"replicas": 2, "selector": "app=web"}));
        assert_eq!(s["metadata"]["resourceVersion"], "7");
        assert!(s["metadata"].get("labels").is_none());
        assert_eq!(requested_replicas(&json!({"spec": {"replicas": 5}})), Ok(5));
        assert!(requested_replicas(&json!({"spec": {"replicas": -1}})).is_err());
    }
}
