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

/// Each stored kind once (its preferred version), with its storage resource.
fn stored_kinds(app: &ApiState) -> Vec<(Kind, String, bool)> {
    let mut seen = std::collections::HashSet::new();
    app.registry
        .all()
        .iter()
        .filter(|d| !d.virtual_only)
        .filter(|d| seen.insert(d.storage_resource()))
        .map(|d| (kind_of(d), d.storage_resource(), d.namespaced))
        .collect()
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
        let contents: Vec<(Kind, Vec<Value>)> = stored_kinds(&self.0)
            .into_iter()
            .filter(|(_, _, namespaced)| *namespaced)
            .map(|(kind, resource, _)| {
                let objs = store
                    .list(&resource, Some(&key.1), None, 0, &|_| true)
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

/// The garbage collector: one key, reconciled over a snapshot of every object.
pub struct GarbageCollector(pub Arc<ApiState>);

const GC_KEY: &str = "garbage-collector";

impl Controller for GarbageCollector {
    fn name(&self) -> &'static str {
        "garbage-collector"
    }

    fn keys_for(&self, ev: &WatchEvent, _store: &Store) -> Vec<ObjKey> {
        // An owner went away or is being deleted with a propagation finalizer.
        let relevant = matches!(ev.kind, crate::store::EventType::Deleted) || ev.object.deleting;
        if relevant {
            vec![(String::new(), GC_KEY.to_string())]
        } else {
            vec![]
        }
    }

    fn all_keys(&self, _store: &Store) -> Vec<ObjKey> {
        vec![(String::new(), GC_KEY.to_string())]
    }

    fn reconcile(&self, store: &Store, _key: &ObjKey, _now: jiff::Timestamp) -> Plan {
        let mut objects: Vec<(Kind, Value)> = Vec::new();
        for (kind, resource, _) in stored_kinds(&self.0) {
            for o in store.list(&resource, None, None, 0, &|_| true).items {
                objects.push((kind.clone(), o.value()));
            }
        }
        let index = gc::OwnerIndex::build(&objects);
        Plan {
            actions: gc::dependents_to_delete(&|ns, r| index.state(ns, r), &objects),
            requeue_after: None,
        }
    }
}
