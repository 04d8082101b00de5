//! OpenAPI v3: the root index and one document per group-version. Each document lists every
//! kind's object path with its operations; PATCH carries `x-kubernetes-group-version-kind` and
//! the `fieldValidation` parameter, which is how kubectl decides to leave validation of
//! `apply`/`create -f` to the server (`?fieldValidation=Strict`).

use serde_json::{Map, Value, json};

use crate::resources::{Registry, ResourceDef};

fn gv_path(group: &str, version: &str) -> String {
    if group.is_empty() {
        format!("api/{version}")
    } else {
        format!("apis/{group}/{version}")
    }
}

fn hash(text: &str) -> String {
    // FNV-1a, 64 bit: stable across runs, enough to bust client caches when the document changes.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in text.as_bytes() {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{h:016X}")
}

/// `/openapi/v3`.
pub fn root(registry: &Registry) -> Value {
    let mut paths = Map::new();
    for (group, versions) in registry.groups() {
        for v in versions {
            let p = gv_path(&group, &v);
            let doc = group_version(registry, &p).unwrap_or(Value::Null);
            let h = hash(&doc.to_string());
            paths.insert(
                p.clone(),
                json!({"serverRelativeURL": format!("/openapi/v3/{p}?hash={h}")}),
            );
        }
    }
    json!({"paths": paths})
}

fn query_param(name: &str, description: &str) -> Value {
    json!({"name": name, "in": "query", "description": description, "schema": {"type": "string", "uniqueItems": true}})
}

fn operations(def: &ResourceDef) -> Value {
    let gvk = json!({"group": def.group, "version": def.version, "kind": def.kind});
    let params = vec![
        query_param(
            "dryRun",
            "When present, indicates that modifications should not be persisted.",
        ),
        query_param(
            "fieldManager",
            "A name associated with the actor or entity that is making these changes.",
        ),
        query_param(
            "fieldValidation",
            "How the server handles unknown or duplicate fields in the request body: Ignore, Warn or Strict.",
        ),
    ];
    let op = |action: &str| {
        json!({
            "operationId": format!("{action}{}", def.kind),
            "x-kubernetes-action": action,
            "x-kubernetes-group-version-kind": gvk,
            "parameters": params,
            "responses": {"200": {"description": "OK"}},
        })
    };
    if def.virtual_only {
        return json!({"post": op("post")});
    }
    json!({"get": op("get"), "put": op("put"), "patch": op("patch"), "delete": op("delete")})
}

/// `/openapi/v3/<api/v1 | apis/g/v>`, or `None` if not served.
pub fn group_version(registry: &Registry, gv: &str) -> Option<Value> {
    let parts: Vec<&str> = gv.split('/').collect();
    let (group, version) = match parts.as_slice() {
        ["api", v] => ("", *v),
        ["apis", g, v] => (*g, *v),
        _ => return None,
    };
    let defs = registry.in_group_version(group, version);
    if defs.is_empty() {
        return None;
    }
    let mut paths = Map::new();
    for d in defs {
        let prefix = if group.is_empty() {
            format!("/api/{version}")
        } else {
            format!("/apis/{group}/{version}")
        };
        let path = match (d.virtual_only, d.namespaced) {
            (true, true) => format!("{prefix}/namespaces/{{namespace}}/{}", d.plural),
            (true, false) => format!("{prefix}/{}", d.plural),
            (false, true) => format!("{prefix}/namespaces/{{namespace}}/{}/{{name}}", d.plural),
            (false, false) => format!("{prefix}/{}/{{name}}", d.plural),
        };
        paths.insert(path, operations(&d));
    }
    Some(json!({
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": super::KUBE_GIT_VERSION},
        "paths": paths,
        "components": {"schemas": {}},
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documents_let_kubectl_delegate_validation() {
        let r = Registry::builtin();
        let root = root(&r);
        let url = root["paths"]["apis/apps/v1"]["serverRelativeURL"]
            .as_str()
            .expect("apps");
        assert!(url.starts_with("/openapi/v3/apis/apps/v1?hash="));
        let doc = group_version(&r, "apis/apps/v1").expect("doc");
        let patch =
            &doc["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments/{name}"]["patch"];
        assert_eq!(
            patch["x-kubernetes-group-version-kind"]["kind"],
            "Deployment"
        );
        assert!(
            patch["parameters"]
                .as_array()
                .expect("params")
                .iter()
                .any(|p| p["name"] == "fieldValidation")
        );
        assert!(group_version(&r, "apis/nope/v1").is_none());
    }
}
