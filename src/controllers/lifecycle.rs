//! Runtime adapters of the lifecycle controllers: namespace deletion and the garbage
//! collector. Both need every kind the registry serves.

use std::sync::Arc;

use serde_json::Value;

use super::action::{Kind, intern};
use super::{Controller, ObjKey, Plan, gc, namespace};
use crate::api::ApiState;
use crate::store::{Store, WatchEvent};

fn kind_of(def: &crate::resources::ResourceDef) -> Kind {
    Kind {
        group: intern(&def.group),
        version: intern(&def.version),
        plural: intern(&def.plural),
    }
}

/// Deletes the contents of terminating namespaces, then finalizes them.
pub struct NamespaceController(pub Arc<ApiState>);

impl Controller for NamespaceController {
    fn name(&self) -> &'static str {
        "namespace-controller"
    }

    fn keys_for(&self, ev: &WatchEvent, store: &Store) -> Vec<ObjKey> {
        if &*ev.resource == "namespaces" {
            return if ev.object.deleting {
                vec![(String::new(), ev.object.name.clone())]
            } else {
                vec![]
            };
        }
        // Content of a terminating namespace changed: it may be empty now.
        match store.get("namespaces", "", &ev.object.namespace) {
            Some(ns) if ns.deleting => vec![(String::new(), ns.name.clone())],
            _ => vec![],
        }
    }

    fn all_keys(&self, store: &Store) -> Vec<ObjKey> {
        store
            .list("namespaces", None, None, 0, &|o| o.deleting)
            .items
            .iter()
            .map(|o| (String::new(), o.name.clone()))
            .collect()
    }

    fn reconcile(&self, store: &Store, key: &ObjKey, now: jiff::Timestamp) -> Plan {
        let Some(ns) = store.get("namespaces", "", &key.1) else {
            return Plan::default();
        };
        let contents: Vec<(Kind, Vec<Value>)> = self
            .0
            .registry
            .stored()
            .iter()
            .filter(|d| d.namespaced)
            .map(|d| {
                let kind = kind_of(d);
                let objs = store
                    .list(&d.storage_resource(), Some(&key.1), None, 0, &|_| true)
                    .items
                    .iter()
                    .map(|o| o.value())
                    .collect();
                (kind, objs)
            })
            .collect();
        let plan = namespace::reconcile(&ns.value(), &contents, now);
        Plan {
            actions: plan.actions,
            requeue_after: plan.requeue_after,
        }
    }
}

/// The garbage collector: one key, reconciled over a snapshot of every object. Only objects
/// that have owners, or are being deleted, are parsed; the rest enter the owner index by
/// their identity alone.
pub struct GarbageCollector {
    app: Arc<ApiState>,
    /// Owner uids referenced by some object at the last pass: deleting anything else cannot
    /// concern the collector.
    referenced: std::sync::Mutex<std::collections::HashSet<String>>,
}

impl GarbageCollector {
    /// A collector over `app`'s store and registry.
    pub fn new(app: Arc<ApiState>) -> GarbageCollector {
        GarbageCollector {
            app,
            referenced: std::sync::Mutex::new(std::collections::HashSet::new()),
        }
    }
}

const GC_KEY: &str = "garbage-collector";

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    memchr::memmem::find(hay, needle).is_some()
}

impl Controller for GarbageCollector {
    fn name(&self) -> &'static str {
        "garbage-collector"
    }

    fn keys_for(&self, ev: &WatchEvent, _store: &Store) -> Vec<ObjKey> {
        let deleted = matches!(ev.kind, crate::store::EventType::Deleted);
        if !deleted && !ev.object.owners.is_empty() {
            // Learn new owners as dependents appear, so their deletion wakes the collector.
            let mut referenced = self
                .referenced
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            for r in ev.object.owners.iter().filter(|r| !r.uid.is_empty()) {
                if !referenced.contains(&r.uid) {
                    referenced.insert(r.uid.clone());
                }
            }
        }
        if !deleted && !ev.object.deleting {
            return vec![];
        }
        let referenced = self
            .referenced
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .contains(&ev.object.uid);
        let propagating = ev.object.deleting
            && (contains(&ev.object.json, b"\"foregroundDeletion\"")
                || contains(&ev.object.json, b"\"orphan\""));
        if referenced || propagating {
            vec![(String::new(), GC_KEY.to_string())]
        } else {
            vec![]
        }
    }

    fn all_keys(&self, _store: &Store) -> Vec<ObjKey> {
        vec![(String::new(), GC_KEY.to_string())]
    }

    fn reconcile(&self, store: &Store, _key: &ObjKey, _now: jiff::Timestamp) -> Plan {
        // Objects with owners or being deleted whole (shared parses); the rest only as owners.
        let mut objects: Vec<(Kind, Arc<Value>)> = Vec::new();
        let mut referenced = std::collections::HashSet::new();
        for def in self.app.registry.stored() {
            let kind = kind_of(&def);
            let api_version = def.api_version();
            for o in store
                .list(&def.storage_resource(), None, None, 0, &|_| true)
                .items
            {
                if o.deleting || !o.owners.is_empty() {
                    referenced.extend(
                        o.owners
                            .iter()
                            .filter(|r| !r.uid.is_empty())
                            .map(|r| r.uid.clone()),
                    );
                    objects.push((kind.clone(), o.parsed()));
                } else {
                    objects.push((
                        kind.clone(),
                        Arc::new(serde_json::json!({
                            "apiVersion": api_version,
                            "kind": def.kind,
                            "metadata": {"name": o.name, "namespace": o.namespace, "uid": o.uid},
                        })),
                    ));
                }
            }
        }
        *self
            .referenced
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = referenced;
        let index = gc::OwnerIndex::build(&objects);
        Plan {
            actions: gc::dependents_to_delete(&|ns, r| index.state(ns, r), &objects),
            requeue_after: None,
        }
    }
}

/// Every active namespace gets a `default` ServiceAccount and the `kube-root-ca.crt`
/// ConfigMap with the cluster CA (the serviceaccount and root-ca-cert-publisher controllers).
pub struct ServiceAccountController(pub Arc<ApiState>);

const ROOT_CA: &str = "kube-root-ca.crt";

impl Controller for ServiceAccountController {
    fn name(&self) -> &'static str {
        "serviceaccount-controller"
    }

    fn keys_for(&self, ev: &WatchEvent, _store: &Store) -> Vec<ObjKey> {
        match &*ev.resource {
            "namespaces" => vec![(String::new(), ev.object.name.clone())],
            "serviceaccounts" if ev.object.name == "default" => {
                vec![(String::new(), ev.object.namespace.clone())]
            }
            "configmaps" if ev.object.name == ROOT_CA => {
                vec![(String::new(), ev.object.namespace.clone())]
            }
            _ => vec![],
        }
    }

    fn all_keys(&self, store: &Store) -> Vec<ObjKey> {
        store
            .list("namespaces", None, None, 0, &|o| !o.deleting)
            .items
            .iter()
            .map(|o| (String::new(), o.name.clone()))
            .collect()
    }

    fn reconcile(&self, store: &Store, key: &ObjKey, _now: jiff::Timestamp) -> Plan {
        let ns = &key.1;
        match store.get("namespaces", "", ns) {
            Some(n) if !n.deleting => {}
            _ => return Plan::default(),
        }
        let mut actions = Vec::new();
        if store.get("serviceaccounts", ns, "default").is_none() {
            actions.push(super::Action::Create {
                kind: Kind::new("", "v1", "serviceaccounts"),
                namespace: ns.clone(),
                object: serde_json::json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "default", "namespace": ns}}),
            });
        }
        let want = serde_json::json!({"ca.crt": self.0.ca_pem});
        match store.get("configmaps", ns, ROOT_CA) {
            None => actions.push(super::Action::Create {
                kind: Kind::new("", "v1", "configmaps"),
                namespace: ns.clone(),
                object: serde_json::json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": ROOT_CA, "namespace": ns}, "data": want}),
            }),
            Some(cm) => {
                let mut v = cm.value();
                if v.get("data") != Some(&want) {
                    if let Some(o) = v.as_object_mut() {
                        o.insert("data".into(), want);
                    }
                    actions.push(super::Action::Update {
                        kind: Kind::new("", "v1", "configmaps"),
                        namespace: ns.clone(),
                        object: v,
                    });
                }
            }
        }
        Plan {
            actions,
            requeue_after: None,
        }
    }
}
