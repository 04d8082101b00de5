//! Discovery documents: legacy (`APIVersions`, `APIGroupList`, `APIGroup`, `APIResourceList`)
//! and aggregated v2/v2beta1 (`APIGroupDiscoveryList`), built from the registry.

use serde_json::{Value, json};

use crate::resources::{Registry, ResourceDef};

/// `/api` (legacy).
pub fn core_versions(server_address: &str) -> Value {
    json!({
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}],
    })
}

fn group_doc(group: &str, versions: &[String]) -> Value {
    let vs: Vec<Value> = versions
        .iter()
        .map(|v| json!({"groupVersion": format!("{group}/{v}"), "version": v}))
        .collect();
    json!({
        "name": group,
        "versions": vs,
        "preferredVersion": vs.first().cloned().unwrap_or(Value::Null),
    })
}

/// `/apis` (legacy).
pub fn groups(registry: &Registry) -> Value {
    let groups: Vec<Value> = registry
        .groups()
        .into_iter()
        .filter(|(g, _)| !g.is_empty())
        .map(|(g, vs)| group_doc(&g, &vs))
        .collect();
    json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
}

/// `/apis/<group>` (legacy), or `None` if the group is not served.
pub fn group(registry: &Registry, name: &str) -> Option<Value> {
    let (g, vs) = registry
        .groups()
        .into_iter()
        .find(|(g, _)| g == name && !g.is_empty())?;
    let mut doc = group_doc(&g, &vs);
    doc["kind"] = json!("APIGroup");
    doc["apiVersion"] = json!("v1");
    Some(doc)
}

fn subresources(d: &ResourceDef) -> Vec<(&'static str, Value, &'static [&'static str])> {
    let mut subs = Vec::new();
    if d.group.is_empty() && d.plural == "pods" {
        subs.push((
            "binding",
            json!({"group": "", "version": "v1", "kind": "Binding"}),
            &["create"][..],
        ));
        subs.push((
            "ephemeralcontainers",
            json!({"group": "", "version": "v1", "kind": "Pod"}),
            &["get", "patch", "update"][..],
        ));
        subs.push((
            "eviction",
            json!({"group": "policy", "version": "v1", "kind": "Eviction"}),
            &["create"][..],
        ));
    }
    if d.has_scale {
        subs.push((
            "scale",
            json!({"group": "autoscaling", "version": "v1", "kind": "Scale"}),
            &["get", "patch", "update"][..],
        ));
    }
    if d.has_status {
        subs.push((
            "status",
            json!({"group": d.group, "version": d.version, "kind": d.kind}),
            &["get", "patch", "update"][..],
        ));
    }
    subs
}

/// `/api/v1` or `/apis/<g>/<v>` (legacy `APIResourceList`), or `None` if not served.
pub fn resource_list(registry: &Registry, group: &str, version: &str) -> Option<Value> {
    let defs = registry.in_group_version(group, version);
    if defs.is_empty() {
        return None;
    }
    let mut resources = Vec::new();
    for d in defs {
        let mut r = json!({
            "name": d.plural,
            "singularName": d.singular,
            "namespaced": d.namespaced,
            "kind": d.kind,
            "verbs": d.verbs,
        });
        if !d.short_names.is_empty() {
            r["shortNames"] = json!(d.short_names);
        }
        if !d.categories.is_empty() {
            r["categories"] = json!(d.categories);
        }
        resources.push(r);
        for (sub, kind, verbs) in subresources(&d) {
            let mut r = json!({
                "name": format!("{}/{}", d.plural, sub),
                "singularName": "",
                "namespaced": d.namespaced,
                "kind": kind["kind"],
                "verbs": verbs,
            });
            if kind["group"] != json!(d.group) || kind["version"] != json!(d.version) {
                r["group"] = kind["group"].clone();
                r["version"] = kind["version"].clone();
            }
            resources.push(r);
        }
    }
    let gv = if group.is_empty() {
        version.to_string()
    } else {
        format!("{group}/{version}")
    };
    Some(json!({
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": gv,
        "resources": resources,
    }))
}

/// Aggregated discovery for `/api` (`core` = true) or `/apis`.
pub fn aggregated(registry: &Registry, core: bool, version: &str) -> Value {
    let mut items = Vec::new();
    for (g, vs) in registry.groups() {
        if g.is_empty() != core {
            continue;
        }
        let versions: Vec<Value> = vs
            .iter()
            .map(|v| {
                let resources: Vec<Value> = registry
                    .in_group_version(&g, v)
                    .into_iter()
                    .map(|d| {
                        let mut r = json!({
                            "resource": d.plural,
                            "responseKind": {"group": d.group, "version": d.version, "kind": d.kind},
                            "scope": if d.namespaced { "Namespaced" } else { "Cluster" },
                            "singularResource": d.singular,
                            "verbs": d.verbs,
                        });
                        if !d.short_names.is_empty() {
                            r["shortNames"] = json!(d.short_names);
                        }
                        if !d.categories.is_empty() {
                            r["categories"] = json!(d.categories);
                        }
                        let subs: Vec<Value> = subresources(&d)
                            .into_iter()
                            .map(|(s, kind, verbs)| json!({"subresource": s, "responseKind": kind, "verbs": verbs}))
                            .collect();
                        if !subs.is_empty() {
                            r["subresources"] = json!(subs);
                        }
                        r
                    })
                    .collect();
                json!({"version": v, "resources": resources, "freshness": "Current"})
            })
            .collect();
        items.push(
            json!({"metadata": {"name": g, "creationTimestamp": null}, "versions": versions}),
        );
    }
    json!({
        "kind": "APIGroupDiscoveryList",
        "apiVersion": format!("apidiscovery.k8s.io/{version}"),
        "metadata": {},
        "items": items,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documents_carry_what_kubectl_reads() {
        let r = Registry::builtin();
        let core = resource_list(&r, "", "v1").expect("core");
        let pods = core["resources"]
            .as_array()
            .expect("list")
            .iter()
            .find(|x| x["name"] == "pods")
            .expect("pods");
        assert_eq!(pods["shortNames"], json!(["po"]));
        assert_eq!(pods["categories"], json!(["all"]));
        assert_eq!(pods["namespaced"], json!(true));
        assert!(resource_list(&r, "apps", "v9").is_none());
        let agg = aggregated(&r, false, "v2");
        let apps = agg["items"]
            .as_array()
            .expect("items")
            .iter()
            .find(|i| i["metadata"]["name"] == "apps")
            .expect("apps");
        let deploy = &apps["versions"][0]["resources"]
            .as_array()
            .expect("res")
            .iter()
            .find(|x| x["resource"] == "deployments")
            .cloned()
            .expect("deployments");
        assert_eq!(deploy["scope"], "Namespaced");
        let subs: Vec<&str> = deploy["subresources"]
            .as_array()
            .expect("subresources")
            .iter()
            .map(|s| s["subresource"].as_str().expect("name"))
            .collect();
        assert_eq!(subs, ["scale", "status"]);
        let scale = &deploy["subresources"][0]["responseKind"];
        assert_eq!(
            (scale["group"].as_str(), scale["kind"].as_str()),
            (Some("autoscaling"), Some("Scale"))
        );
        assert_eq!(groups(&r)["groups"][0]["name"], "apps");
        assert!(group(&r, "batch").is_some() && group(&r, "nope").is_none());
    }
}
