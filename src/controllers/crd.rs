//! CustomResourceDefinitions: serving them (the registry and OpenAPI follow the stored CRDs
//! within one event), their status (`NamesAccepted`, `Established`), and their deletion (every
//! custom object goes, then the `customresourcecleanup` finalizer is removed).

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use serde_json::Value;
use tokio_util::sync::CancellationToken;

use super::action::{Action, Kind, intern};
use super::{Controller, ObjKey, Plan};
use crate::api::ApiState;
use crate::api::openapi::{self, CrdKind};
use crate::resources::crd;
use crate::store::{Store, WatchEvent};

/// Where CRDs are stored.
pub const CRDS: &str = "customresourcedefinitions.apiextensions.k8s.io";
/// The finalizer that holds a CRD until its objects are gone.
pub const CLEANUP_FINALIZER: &str = "customresourcecleanup.apiextensions.k8s.io";
const CRD_KIND: Kind = Kind::new("apiextensions.k8s.io", "v1", "customresourcedefinitions");

fn stored_crds(store: &Store) -> Vec<Value> {
    store
        .list(CRDS, None, None, 0, &|_| true)
        .items
        .iter()
        .map(|o| o.value())
        .collect()
}

/// Serves what the stored CRDs describe: registry kinds and OpenAPI documents.
pub fn sync_registry(app: &Arc<ApiState>) {
    static PUBLISHED: Mutex<Option<HashSet<(String, String)>>> = Mutex::new(None);
    let crds = stored_crds(&app.store);
    let infos: Vec<crd::CrdInfo> = crds.iter().filter_map(|c| crd::parse_crd(c).ok()).collect();
    app.registry.set_custom(app.registry.custom_defs(&infos));
    let mut now_published = HashSet::new();
    let mut gvs: Vec<(String, String)> = Vec::new();
    for info in &infos {
        for v in info.versions.iter().filter(|v| v.served) {
            let gv = (info.group.clone(), v.name.clone());
            if !gvs.contains(&gv) {
                gvs.push(gv);
            }
        }
    }
    for (group, version) in &gvs {
        let kinds: Vec<CrdKind<'_>> = infos
            .iter()
            .filter(|i| &i.group == group)
            .flat_map(|i| {
                i.versions
                    .iter()
                    .filter(|v| v.served && &v.name == version)
                    .map(move |v| CrdKind {
                        kind: &i.names.kind,
                        list_kind: &i.names.list_kind,
                        plural: &i.names.plural,
                        namespaced: i.namespaced,
                        has_status: v.status_subresource,
                        has_scale: v.scale.is_some(),
                        schema: v.schema.as_ref(),
                    })
            })
            .collect();
        openapi::shared().set_crd_group_version(group, version, &kinds);
        now_published.insert((group.clone(), version.clone()));
    }
    let mut published = PUBLISHED
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    for (group, version) in published.take().unwrap_or_default() {
        if !now_published.contains(&(group.clone(), version.clone())) {
            openapi::shared().set_crd_group_version(&group, &version, &[]);
        }
    }
    *published = Some(now_published);
}

/// Keeps the registry in step with the stored CRDs until `stop`.
pub fn spawn_registry_sync(app: Arc<ApiState>, stop: CancellationToken) {
    tokio::spawn(async move {
        loop {
            let Ok(start) = app.store.hub().subscribe(None) else {
                return;
            };
            let mut live = start.live;
            sync_registry(&app);
            loop {
                tokio::select! {
                    _ = stop.cancelled() => return,
                    ev = live.recv() => match ev {
                        Ok(ev) if &*ev.resource == CRDS => sync_registry(&app),
                        Ok(_) => {}
                        Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => break,
                        Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
                    },
                }
            }
        }
    });
}

/// Status and cleanup of CRDs.
pub struct CrdController;

impl Controller for CrdController {
    fn name(&self) -> &'static str {
        "crd-controller"
    }

    fn keys_for(&self, ev: &WatchEvent, store: &Store) -> Vec<ObjKey> {
        if &*ev.resource == CRDS {
            return vec![(String::new(), ev.object.name.clone())];
        }
        // A custom object of a terminating CRD went away: maybe the CRD can go now.
        match store.get(CRDS, "", &ev.resource) {
            Some(c) if c.deleting => vec![(String::new(), c.name.clone())],
            _ => vec![],
        }
    }

    fn all_keys(&self, store: &Store) -> Vec<ObjKey> {
        store
            .list(CRDS, None, None, 0, &|_| true)
            .items
            .iter()
            .map(|o| (String::new(), o.name.clone()))
            .collect()
    }

    fn reconcile(&self, store: &Store, key: &ObjKey, _now: jiff::Timestamp) -> Plan {
        let Some(stored) = store.get(CRDS, "", &key.1) else {
            return Plan::default();
        };
        let obj = stored.value();
        let Ok(info) = crd::parse_crd(&obj) else {
            return Plan::default();
        };
        if obj
            .pointer("/metadata/deletionTimestamp")
            .is_some_and(|v| !v.is_null())
        {
            return cleanup(store, &obj, &info);
        }
        let others: Vec<crd::CrdInfo> = stored_crds(store)
            .iter()
            .filter(|c| c.pointer("/metadata/name").and_then(Value::as_str) != Some(key.1.as_str()))
            .filter_map(|c| crd::parse_crd(c).ok())
            .collect();
        let status = crd::crd_status(&obj, &others);
        if obj.get("status") == Some(&status) {
            return Plan::default();
        }
        let mut new = obj;
        if let Some(o) = new.as_object_mut() {
            o.insert("status".into(), status);
        }
        Plan {
            actions: vec![Action::UpdateStatus {
                kind: CRD_KIND,
                namespace: String::new(),
                object: new,
            }],
            requeue_after: None,
        }
    }
}

fn cleanup(store: &Store, obj: &Value, info: &crd::CrdInfo) -> Plan {
    let storage = format!("{}.{}", info.names.plural, info.group);
    let remaining = store.list(&storage, None, None, 0, &|_| true).items;
    let version = info
        .storage_version()
        .map(|v| v.name.clone())
        .or_else(|| info.versions.first().map(|v| v.name.clone()))
        .unwrap_or_default();
    if !remaining.is_empty() {
        let kind = Kind {
            group: intern(&info.group),
            version: intern(&version),
            plural: intern(&info.names.plural),
        };
        return Plan {
            actions: remaining
                .iter()
                .map(|o| Action::Delete {
                    kind: kind.clone(),
                    namespace: o.namespace.clone(),
                    name: o.name.clone(),
                    uid: Some(o.uid.clone()),
                    propagation: Some("Background"),
                })
                .collect(),
            requeue_after: None,
        };
    }
    let mut new = obj.clone();
    let Some(fins) = new
        .pointer_mut("/metadata/finalizers")
        .and_then(Value::as_array_mut)
    else {
        return Plan::default();
    };
    let before = fins.len();
    fins.retain(|f| f.as_str() != Some(CLEANUP_FINALIZER));
    if fins.len() == before {
        return Plan::default();
    }
    Plan {
        actions: vec![Action::Update {
            kind: CRD_KIND,
            namespace: String::new(),
            object: new,
        }],
        requeue_after: None,
    }
}
