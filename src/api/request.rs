//! What a request asks for: the route its path names, its query options and the response
//! form its `Accept` header wants. Pure parsing, no I/O.

use std::collections::HashMap;

/// The route a path names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// `/version`.
    Version,
    /// `/healthz`, `/livez`, `/readyz` (and their sub-checks).
    Health,
    /// `/api`.
    CoreVersions,
    /// `/api/v1`.
    CoreResources,
    /// `/apis`.
    Groups,
    /// `/apis/<group>`.
    Group(String),
    /// `/apis/<group>/<version>`.
    GroupResources(String, String),
    /// `/openapi/v3`.
    OpenApiV3,
    /// `/openapi/v3/<api/v1 | apis/g/v>`.
    OpenApiV3Doc(String),
    /// `/openapi/v2`.
    OpenApiV2,
    /// `/metrics`.
    Metrics,
    /// A resource path.
    Resource(ResourcePath),
}

/// A path under a group-version that names a resource collection, an object or a subresource.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ResourcePath {
    /// Group ("" = core).
    pub group: String,
    /// Version.
    pub version: String,
    /// The namespace in the path, if any.
    pub namespace: Option<String>,
    /// The plural.
    pub plural: String,
    /// The object name, if any.
    pub name: Option<String>,
    /// The subresource, if any.
    pub subresource: Option<String>,
    /// An old-style `/watch/` path.
    pub legacy_watch: bool,
}

/// Parses a path; `None` when the server serves nothing there.
pub fn parse_path(path: &str) -> Option<Route> {
    let trimmed = path.trim_end_matches('/');
    let segs: Vec<&str> = trimmed.split('/').skip(1).collect();
    match segs.as_slice() {
        ["version"] => Some(Route::Version),
        ["healthz" | "livez" | "readyz", ..] => Some(Route::Health),
        ["api"] => Some(Route::CoreVersions),
        ["api", "v1"] => Some(Route::CoreResources),
        ["api", "v1", rest @ ..] => resource_path("", "v1", rest).map(Route::Resource),
        ["apis"] => Some(Route::Groups),
        ["apis", g] => Some(Route::Group(g.to_string())),
        ["apis", g, v] => Some(Route::GroupResources(g.to_string(), v.to_string())),
        ["apis", g, v, rest @ ..] => resource_path(g, v, rest).map(Route::Resource),
        ["openapi", "v3"] => Some(Route::OpenApiV3),
        ["openapi", "v3", rest @ ..] => Some(Route::OpenApiV3Doc(rest.join("/"))),
        ["openapi", "v2"] => Some(Route::OpenApiV2),
        ["metrics"] => Some(Route::Metrics),
        _ => None,
    }
}

fn resource_path(group: &str, version: &str, rest: &[&str]) -> Option<ResourcePath> {
    let (legacy_watch, rest) = match rest {
        ["watch", tail @ ..] => (true, tail),
        _ => (false, rest),
    };
    let mut p = ResourcePath {
        group: group.to_string(),
        version: version.to_string(),
        legacy_watch,
        ..Default::default()
    };
    let owned = |s: &&str| Some(s.to_string());
    let decode = |s: &str| percent_decode(s);
    match rest {
        [] => return None,
        ["namespaces", ns, plural, tail @ ..]
            if !(group.is_empty()
                && tail.is_empty()
                && matches!(*plural, "status" | "finalize")) =>
        {
            p.namespace = Some(decode(ns)?);
            p.plural = plural.to_string();
            p.name = tail.first().and_then(|n| decode(n));
            if tail.len() > 1 {
                p.subresource = Some(tail[1..].join("/"));
            }
            if !tail.is_empty() && p.name.is_none() {
                return None;
            }
        }
        [plural, tail @ ..] => {
            p.plural = plural.to_string();
            p.name = tail.first().and_then(|n| decode(n));
            if !tail.is_empty() && p.name.is_none() {
                return None;
            }
            p.subresource = tail.get(1).and_then(owned);
            if tail.len() > 2 {
                p.subresource = Some(tail[1..].join("/"));
            }
        }
    }
    if p.plural.is_empty() || p.name.as_deref() == Some("") || p.namespace.as_deref() == Some("") {
        return None;
    }
    Some(p)
}

fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// Query parameters, first value wins.
#[derive(Debug, Default, Clone)]
pub struct Query(HashMap<String, String>);

impl Query {
    /// Parses a raw query string.
    pub fn parse(raw: Option<&str>) -> Query {
        let mut map = HashMap::new();
        if let Some(raw) = raw {
            let pairs: Vec<(String, String)> = serde_urlencoded::from_str(raw).unwrap_or_default();
            for (k, v) in pairs {
                map.entry(k).or_insert(v);
            }
        }
        Query(map)
    }

    /// A parameter.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(String::as_str)
    }

    /// A boolean parameter (`true`, `1`).
    pub fn flag(&self, key: &str) -> bool {
        matches!(self.get(key), Some("true" | "1"))
    }
}

/// The response forms an `Accept` header allows, by preference.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wanted {
    /// Plain JSON.
    Json,
    /// `application/yaml`.
    Yaml,
    /// A `meta.k8s.io` Table (v1 or v1beta1).
    Table(TableVersion),
    /// `PartialObjectMetadata` / `PartialObjectMetadataList` (`meta.k8s.io/v1`).
    PartialMetadata,
    /// Aggregated discovery (`apidiscovery.k8s.io` v2 or v2beta1).
    AggregatedDiscovery(&'static str),
    /// Nothing this server can produce.
    Unsupported,
}

/// Which Table version was asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TableVersion {
    /// meta.k8s.io/v1.
    V1,
    /// meta.k8s.io/v1beta1.
    V1beta1,
}

/// Picks the first form in `accept` this server produces.
pub fn negotiate(accept: Option<&str>) -> Wanted {
    let Some(accept) = accept else {
        return Wanted::Json;
    };
    if accept.trim().is_empty() {
        return Wanted::Json;
    }
    for entry in accept.split(',') {
        let mut parts = entry.split(';').map(str::trim);
        let media = parts.next().unwrap_or("").to_ascii_lowercase();
        let params: HashMap<String, String> = parts
            .filter_map(|p| p.split_once('='))
            .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
            .collect();
        let param = |k: &str| params.get(k).map(String::as_str);
        match media.as_str() {
            "application/json" => match (param("as"), param("g"), param("v")) {
                (Some("Table"), Some("meta.k8s.io"), Some("v1")) => {
                    return Wanted::Table(TableVersion::V1);
                }
                (Some("Table"), Some("meta.k8s.io"), Some("v1beta1")) => {
                    return Wanted::Table(TableVersion::V1beta1);
                }
                (
                    Some("PartialObjectMetadata" | "PartialObjectMetadataList"),
                    Some("meta.k8s.io"),
                    Some("v1"),
                ) => {
                    return Wanted::PartialMetadata;
                }
                (Some("APIGroupDiscoveryList"), Some("apidiscovery.k8s.io"), Some("v2")) => {
                    return Wanted::AggregatedDiscovery("v2");
                }
                (Some("APIGroupDiscoveryList"), Some("apidiscovery.k8s.io"), Some("v2beta1")) => {
                    return Wanted::AggregatedDiscovery("v2beta1");
                }
                (None, _, _) => return Wanted::Json,
                _ => continue,
            },
            "*/*" | "application/*" => return Wanted::Json,
            "application/yaml" => return Wanted::Yaml,
            _ => continue,
        }
    }
    Wanted::Unsupported
}

#[cfg(test)]
mod tests {
    use super::*;

    fn res(path: &str) -> ResourcePath {
        match parse_path(path) {
            Some(Route::Resource(p)) => p,
            other => panic!("{path}: {other:?}"),
        }
    }

    #[test]
    fn paths_parse_like_kube_apiserver() {
        assert_eq!(parse_path("/version"), Some(Route::Version));
        assert_eq!(parse_path("/apis/apps"), Some(Route::Group("apps".into())));
        assert_eq!(
            parse_path("/openapi/v3/apis/apps/v1"),
            Some(Route::OpenApiV3Doc("apis/apps/v1".into()))
        );
        let p = res("/api/v1/namespaces/shop/configmaps/cfg");
        assert_eq!(
            (p.namespace.as_deref(), p.plural.as_str(), p.name.as_deref()),
            (Some("shop"), "configmaps", Some("cfg"))
        );
        let p = res("/api/v1/namespaces/shop");
        assert_eq!(
            (p.namespace, p.plural.as_str(), p.name.as_deref()),
            (None, "namespaces", Some("shop"))
        );
        let p = res("/api/v1/namespaces/shop/status");
        assert_eq!(
            (
                p.plural.as_str(),
                p.name.as_deref(),
                p.subresource.as_deref()
            ),
            ("namespaces", Some("shop"), Some("status"))
        );
        let p = res("/api/v1/namespaces/shop/finalize");
        assert_eq!(p.subresource.as_deref(), Some("finalize"));
        let p = res("/apis/apps/v1/namespaces/a/deployments/web/scale");
        assert_eq!(p.subresource.as_deref(), Some("scale"));
        let p = res("/api/v1/pods");
        assert_eq!((p.namespace, p.name), (None, None));
        let p = res("/api/v1/watch/namespaces/a/pods");
        assert!(p.legacy_watch);
        let p = res("/api/v1/nodes/n1/status");
        assert_eq!(p.subresource.as_deref(), Some("status"));
        assert_eq!(parse_path("/nope"), None);
    }

    #[test]
    fn accept_negotiation_prefers_the_first_supported_form() {
        let kubectl_get = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json";
        assert_eq!(
            negotiate(Some(kubectl_get)),
            Wanted::Table(TableVersion::V1)
        );
        let discovery = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList,application/json";
        assert_eq!(
            negotiate(Some(discovery)),
            Wanted::AggregatedDiscovery("v2")
        );
        assert_eq!(
            negotiate(Some("application/vnd.kubernetes.protobuf, */*")),
            Wanted::Json
        );
        assert_eq!(
            negotiate(Some("application/vnd.kubernetes.protobuf")),
            Wanted::Unsupported
        );
        assert_eq!(negotiate(None), Wanted::Json);
        assert_eq!(
            negotiate(Some(
                "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1"
            )),
            Wanted::PartialMetadata
        );
    }
}
