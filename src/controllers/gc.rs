//! The garbage collector core: what kube-controller-manager's garbage collector (1.33) does
//! with `metadata.ownerReferences`, computed from a snapshot instead of a live graph.
//!
//! For every object with owner references, each reference is classified by its owner's state:
//! - *dangling*: no object with that uid (or a namespaced owner outside the dependent's
//!   namespace, which upstream treats as absent);
//! - *waiting*: the owner is being deleted with the `foregroundDeletion` finalizer;
//! - *solid*: anything else, including an owner being deleted with `orphan` or in background.
//!
//! Then, as upstream's `attemptToDeleteItem`:
//! - some solid owner: dangling and waiting references are removed (one Update);
//! - no solid owner, some waiting owner, and the object has dependents of its own: it is
//!   deleted with `Foreground` (after its references are made non-blocking when one of its
//!   dependents is itself deleting dependents, upstream's cycle breaker);
//! - otherwise (every owner absent): it is deleted, `Background` unless its own finalizers ask
//!   for `Orphan` or `Foreground`.
//!
//! Objects already being deleted are left alone as dependents, except that references to an
//! owner being deleted with `orphan` are removed from every dependent. Owners being deleted
//! get their `foregroundDeletion` finalizer removed once no dependent with
//! `blockOwnerDeletion: true` remains, and their `orphan` finalizer removed after (in the same
//! plan, ordered after) the Updates that release their dependents.
//!
//! Cluster-scoped dependents cannot have namespaced owners: upstream never collects them, and
//! [`OwnerIndex::state`] reports such owners as present so nothing happens. Upstream's
//! `OwnerRefInvalidNamespace` warning events are not emitted (a stateless core would repeat
//! them on every pass).
//!
//! Every object gets at most one Update per plan (edits are merged), so the resourceVersion
//! precondition of one write cannot be broken by another write of the same plan.

use std::borrow::Borrow;
use std::collections::{BTreeSet, HashMap};

use serde_json::{Value, json};

use crate::controllers::action::{Action, Kind};

/// The finalizer of Foreground deletion.
pub const FOREGROUND_FINALIZER: &str = "foregroundDeletion";
/// The finalizer of Orphan deletion.
pub const ORPHAN_FINALIZER: &str = "orphan";

/// One entry of `metadata.ownerReferences`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnerRef {
    /// `apiVersion`.
    pub api_version: String,
    /// `kind`.
    pub kind: String,
    /// `name`.
    pub name: String,
    /// `uid`.
    pub uid: String,
    /// `controller`.
    pub controller: bool,
    /// `blockOwnerDeletion`.
    pub block_owner_deletion: bool,
}

impl OwnerRef {
    /// The owner references of `obj` (entries without a uid are skipped).
    pub fn of(obj: &Value) -> Vec<OwnerRef> {
        obj.pointer("/metadata/ownerReferences")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|r| {
                let s = |f: &str| r.get(f).and_then(Value::as_str).unwrap_or("").to_string();
                let b = |f: &str| r.get(f).and_then(Value::as_bool).unwrap_or(false);
                let uid = s("uid");
                (!uid.is_empty()).then(|| OwnerRef {
                    api_version: s("apiVersion"),
                    kind: s("kind"),
                    name: s("name"),
                    uid,
                    controller: b("controller"),
                    block_owner_deletion: b("blockOwnerDeletion"),
                })
            })
            .collect()
    }

    /// The API group of `apiVersion` ("" for core).
    pub fn group(&self) -> &str {
        group_of(&self.api_version)
    }
}

/// What the garbage collector knows about an owner.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OwnerState {
    /// No such object (by uid), or not one the dependent may refer to.
    Absent,
    /// The owner exists.
    Present {
        /// It is being deleted with the `foregroundDeletion` finalizer.
        deleting_foreground: bool,
        /// It is being deleted with the `orphan` finalizer.
        deleting_orphan: bool,
    },
}

const SOLID: OwnerState = OwnerState::Present {
    deleting_foreground: false,
    deleting_orphan: false,
};

#[derive(Debug, Clone)]
struct Entry {
    namespace: String,
    name: String,
    kind: String,
    group: String,
    foreground: bool,
    orphan: bool,
}

/// Owners by uid, built from a snapshot of every object, answering [`OwnerState`] queries.
#[derive(Debug, Clone, Default)]
pub struct OwnerIndex {
    by_uid: HashMap<String, Entry>,
    /// (group, kind) → namespaced, as seen in the snapshot.
    scopes: HashMap<(String, String), bool>,
}

impl OwnerIndex {
    /// Indexes `objects` (their `apiVersion`/`kind` fields, when present, teach the index which
    /// kinds are namespaced).
    pub fn build<V: Borrow<Value>>(objects: &[(Kind, V)]) -> OwnerIndex {
        let mut index = OwnerIndex::default();
        for (k, obj) in objects {
            let obj: &Value = obj.borrow();
            let uid = meta_str(obj, "uid");
            let kind = obj.get("kind").and_then(Value::as_str).unwrap_or("");
            let namespace = meta_str(obj, "namespace");
            if !kind.is_empty() {
                index.scopes.insert(
                    (k.group.to_string(), kind.to_string()),
                    !namespace.is_empty(),
                );
            }
            if uid.is_empty() {
                continue;
            }
            let deleting = is_deleting(obj);
            let fins = finalizers(obj);
            index.by_uid.insert(
                uid.to_string(),
                Entry {
                    namespace: namespace.to_string(),
                    name: meta_str(obj, "name").to_string(),
                    kind: kind.to_string(),
                    group: k.group.to_string(),
                    foreground: deleting && fins.iter().any(|f| f == FOREGROUND_FINALIZER),
                    orphan: deleting && fins.iter().any(|f| f == ORPHAN_FINALIZER),
                },
            );
        }
        index
    }

    /// The state of the owner `r` names, seen from a dependent in `dependent_namespace` (""
    /// for cluster-scoped dependents).
    pub fn state(&self, dependent_namespace: &str, r: &OwnerRef) -> OwnerState {
        let Some(e) = self.by_uid.get(&r.uid) else {
            let namespaced_kind = self
                .scopes
                .get(&(r.group().to_string(), r.kind.clone()))
                .copied()
                .unwrap_or(false);
            // A cluster-scoped dependent of a namespaced kind cannot be resolved: never collected.
            return if dependent_namespace.is_empty() && namespaced_kind {
                SOLID
            } else {
                OwnerState::Absent
            };
        };
        let same_identity =
            e.name == r.name && (e.kind.is_empty() || e.kind == r.kind) && e.group == r.group();
        if !same_identity {
            return OwnerState::Absent;
        }
        if !e.namespace.is_empty() {
            if dependent_namespace.is_empty() {
                return SOLID;
            }
            if e.namespace != dependent_namespace {
                return OwnerState::Absent;
            }
        }
        OwnerState::Present {
            deleting_foreground: e.foreground,
            deleting_orphan: e.orphan,
        }
    }
}

/// Changes to one object, merged into a single Update.
#[derive(Debug, Default)]
struct Edit {
    remove_refs: BTreeSet<String>,
    unblock: bool,
    remove_finalizers: BTreeSet<&'static str>,
}

/// What the garbage collector wants done with `objects` (a snapshot of every object, with its
/// kind), given `owner_state(dependent_namespace, reference)`, normally
/// [`OwnerIndex::state`] of an index built from the same snapshot.
///
/// Order: Updates releasing or unblocking dependents, then Deletes, then Updates removing
/// owners' `orphan`/`foregroundDeletion` finalizers.
pub fn dependents_to_delete<V: Borrow<Value>>(
    owner_state: &dyn Fn(&str, &OwnerRef) -> OwnerState,
    objects: &[(Kind, V)],
) -> Vec<Action> {
    // uid → indexes of objects referring to it.
    let mut dependents: HashMap<&str, Vec<usize>> = HashMap::new();
    for (i, (_, obj)) in objects.iter().enumerate() {
        let obj: &Value = obj.borrow();
        for r in obj
            .pointer("/metadata/ownerReferences")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if let Some(uid) = r.get("uid").and_then(Value::as_str) {
                dependents.entry(uid).or_default().push(i);
            }
        }
    }
    let deleting_dependents =
        |obj: &Value| is_deleting(obj) && finalizers(obj).iter().any(|f| f == FOREGROUND_FINALIZER);

    let mut edits: HashMap<usize, Edit> = HashMap::new();
    let mut deletes: Vec<Action> = Vec::new();
    for (i, (kind, obj)) in objects.iter().enumerate() {
        let obj: &Value = obj.borrow();
        let namespace = meta_str(obj, "namespace");
        let uid = meta_str(obj, "uid");

        // As an owner being deleted.
        if is_deleting(obj) {
            let fins = finalizers(obj);
            if fins.iter().any(|f| f == FOREGROUND_FINALIZER) {
                let blocked = dependents.get(uid).into_iter().flatten().any(|&d| {
                    OwnerRef::of(objects[d].1.borrow())
                        .iter()
                        .any(|r| r.uid == uid && r.block_owner_deletion)
                });
                if !blocked {
                    edits
                        .entry(i)
                        .or_default()
                        .remove_finalizers
                        .insert(FOREGROUND_FINALIZER);
                }
            }
            if fins.iter().any(|f| f == ORPHAN_FINALIZER) {
                edits
                    .entry(i)
                    .or_default()
                    .remove_finalizers
                    .insert(ORPHAN_FINALIZER);
            }
        }

        // As a dependent.
        let refs = OwnerRef::of(obj);
        if refs.is_empty() {
            continue;
        }
        let states: Vec<OwnerState> = refs.iter().map(|r| owner_state(namespace, r)).collect();
        for (r, s) in refs.iter().zip(&states) {
            if matches!(
                s,
                OwnerState::Present {
                    deleting_orphan: true,
                    ..
                }
            ) {
                edits
                    .entry(i)
                    .or_default()
                    .remove_refs
                    .insert(r.uid.clone());
            }
        }
        if is_deleting(obj) {
            // Being deleted is a one-way trip; its dependents are handled when it is gone (or,
            // with foregroundDeletion, above as an owner).
            continue;
        }
        let mut solid = false;
        let mut dangling = Vec::new();
        let mut waiting = Vec::new();
        for (r, s) in refs.iter().zip(&states) {
            match s {
                OwnerState::Absent => dangling.push(r.uid.clone()),
                OwnerState::Present {
                    deleting_foreground: true,
                    deleting_orphan: false,
                } => waiting.push(r.uid.clone()),
                OwnerState::Present { .. } => solid = true,
            }
        }
        let own_dependents = dependents.get(uid).map_or(&[][..], Vec::as_slice);
        if solid {
            if !dangling.is_empty() || !waiting.is_empty() {
                let e = edits.entry(i).or_default();
                e.remove_refs.extend(dangling);
                e.remove_refs.extend(waiting);
            }
        } else if !waiting.is_empty() && !own_dependents.is_empty() {
            if own_dependents
                .iter()
                .any(|&d| deleting_dependents(objects[d].1.borrow()))
            {
                edits.entry(i).or_default().unblock = true;
            }
            deletes.push(delete(kind, obj, "Foreground"));
        } else {
            let fins = finalizers(obj);
            let policy = if fins.iter().any(|f| f == ORPHAN_FINALIZER) {
                "Orphan"
            } else if fins.iter().any(|f| f == FOREGROUND_FINALIZER) {
                "Foreground"
            } else {
                "Background"
            };
            deletes.push(delete(kind, obj, policy));
        }
    }

    let mut releases = Vec::new();
    let mut finalizer_removals = Vec::new();
    let mut indexes: Vec<usize> = edits.keys().copied().collect();
    indexes.sort_unstable();
    for i in indexes {
        let Some(edit) = edits.get(&i) else { continue };
        let (kind, obj) = &objects[i];
        let obj: &Value = obj.borrow();
        let Some(updated) = apply_edit(obj, edit) else {
            continue;
        };
        let action = Action::Update {
            kind: kind.clone(),
            namespace: meta_str(obj, "namespace").to_string(),
            object: updated,
        };
        if edit.remove_finalizers.is_empty() {
            releases.push(action);
        } else {
            finalizer_removals.push(action);
        }
    }
    releases.extend(deletes);
    releases.extend(finalizer_removals);
    releases
}

/// `obj` with `edit` applied, or `None` when nothing changes.
fn apply_edit(obj: &Value, edit: &Edit) -> Option<Value> {
    let mut updated = obj.clone();
    let meta = updated.get_mut("metadata")?.as_object_mut()?;
    let mut changed = false;
    if let Some(refs) = meta
        .get_mut("ownerReferences")
        .and_then(Value::as_array_mut)
    {
        let before = refs.len();
        refs.retain(|r| {
            r.get("uid")
                .and_then(Value::as_str)
                .is_none_or(|u| !edit.remove_refs.contains(u))
        });
        changed |= refs.len() != before;
        if edit.unblock {
            for r in refs.iter_mut().filter_map(Value::as_object_mut) {
                if r.get("blockOwnerDeletion").and_then(Value::as_bool) == Some(true) {
                    r.insert("blockOwnerDeletion".into(), json!(false));
                    changed = true;
                }
            }
        }
        if refs.is_empty() {
            meta.remove("ownerReferences");
        }
    }
    if let Some(fins) = meta.get_mut("finalizers").and_then(Value::as_array_mut) {
        let before = fins.len();
        fins.retain(|f| {
            f.as_str()
                .is_none_or(|f| !edit.remove_finalizers.contains(f))
        });
        changed |= fins.len() != before;
        if fins.is_empty() {
            meta.remove("finalizers");
        }
    }
    changed.then_some(updated)
}

fn delete(kind: &Kind, obj: &Value, propagation: &'static str) -> Action {
    Action::Delete {
        kind: kind.clone(),
        namespace: meta_str(obj, "namespace").to_string(),
        name: meta_str(obj, "name").to_string(),
        uid: Some(meta_str(obj, "uid").to_string()).filter(|u| !u.is_empty()),
        propagation: Some(propagation),
    }
}

fn is_deleting(obj: &Value) -> bool {
    obj.pointer("/metadata/deletionTimestamp")
        .is_some_and(|v| !v.is_null())
}

fn finalizers(obj: &Value) -> Vec<String> {
    obj.pointer("/metadata/finalizers")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|f| f.as_str().map(str::to_string))
        .collect()
}

fn group_of(api_version: &str) -> &str {
    api_version.rsplit_once('/').map_or("", |(g, _)| g)
}

fn meta_str<'v>(obj: &'v Value, field: &str) -> &'v str {
    obj.get("metadata")
        .and_then(|m| m.get(field))
        .and_then(Value::as_str)
        .unwrap_or("")
}

#[cfg(test)]
mod tests {
    use super::*;

    type Case = (&'static str, Vec<(Kind, Value)>, Vec<&'static str>);
    use crate::controllers::action::{DEPLOYMENTS, PODS, REPLICA_SETS};

    const NAMESPACES: Kind = Kind::new("", "v1", "namespaces");

    fn object(kind: &str, api: &str, name: &str, ns: &str, owners: &[(&str, &str, bool)]) -> Value {
        let refs: Vec<Value> = owners
            .iter()
            .map(|(k, uid, block)| {
                json!({"apiVersion": "apps/v1", "kind": k, "name": uid.trim_end_matches("-uid"), "uid": uid, "blockOwnerDeletion": block})
            })
            .collect();
        let mut o = json!({"apiVersion": api, "kind": kind, "metadata": {"name": name, "namespace": ns, "uid": format!("{name}-uid")}});
        if !refs.is_empty() {
            o["metadata"]["ownerReferences"] = Value::Array(refs);
        }
        o
    }

    fn deleting(mut o: Value, finalizer: &str) -> Value {
        o["metadata"]["deletionTimestamp"] = json!("2025-01-01T00:00:00Z");
        o["metadata"]["finalizers"] = json!([finalizer]);
        o
    }

    fn run(objects: &[(Kind, Value)]) -> Vec<String> {
        let index = OwnerIndex::build(objects);
        dependents_to_delete(&|ns, r| index.state(ns, r), objects)
            .iter()
            .map(|a| match a {
                Action::Delete {
                    name,
                    propagation,
                    uid,
                    ..
                } => {
                    assert!(uid.is_some());
                    format!("delete {name} {}", propagation.unwrap_or("-"))
                }
                Action::Update { object, .. } => {
                    let m = &object["metadata"];
                    let refs: Vec<String> = m["ownerReferences"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .map(|r| {
                            format!(
                                "{}{}",
                                r["uid"].as_str().unwrap(),
                                if r["blockOwnerDeletion"] == true {
                                    "!"
                                } else {
                                    ""
                                }
                            )
                        })
                        .collect();
                    let fins: Vec<&str> = m["finalizers"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(Value::as_str)
                        .collect();
                    format!(
                        "update {} refs=[{}] finalizers=[{}]",
                        m["name"].as_str().unwrap(),
                        refs.join(","),
                        fins.join(",")
                    )
                }
                other => panic!("{other:?}"),
            })
            .collect()
    }

    #[test]
    fn gc_flows() {
        let deploy = || object("Deployment", "apps/v1", "d", "shop", &[]);
        let rs = || {
            object(
                "ReplicaSet",
                "apps/v1",
                "rs",
                "shop",
                &[("Deployment", "d-uid", true)],
            )
        };
        let pod = |n: &str| object("Pod", "v1", n, "shop", &[("ReplicaSet", "rs-uid", true)]);
        let cases: Vec<Case> = vec![
            (
                "everything owned and present",
                vec![
                    (DEPLOYMENTS, deploy()),
                    (REPLICA_SETS, rs()),
                    (PODS, pod("p")),
                ],
                vec![],
            ),
            (
                "background: owner gone",
                vec![(REPLICA_SETS, rs()), (PODS, pod("p"))],
                vec!["delete rs Background"],
            ),
            (
                "one of two owners gone: its reference is removed",
                vec![
                    (DEPLOYMENTS, deploy()),
                    (
                        PODS,
                        object(
                            "Pod",
                            "v1",
                            "p",
                            "shop",
                            &[
                                ("Deployment", "d-uid", false),
                                ("ReplicaSet", "gone-uid", false),
                            ],
                        ),
                    ),
                ],
                vec!["update p refs=[d-uid] finalizers=[]"],
            ),
            (
                "dependent's own orphan finalizer decides the propagation",
                vec![(REPLICA_SETS, {
                    let mut r = rs();
                    r["metadata"]["finalizers"] = json!(["orphan"]);
                    r
                })],
                vec!["delete rs Orphan"],
            ),
            (
                "foreground: dependent with dependents is deleted in foreground, owner waits",
                vec![
                    (DEPLOYMENTS, deleting(deploy(), "foregroundDeletion")),
                    (REPLICA_SETS, rs()),
                    (PODS, pod("p")),
                ],
                vec!["delete rs Foreground"],
            ),
            (
                "foreground: leaf dependents are deleted in background",
                vec![
                    (REPLICA_SETS, deleting(rs(), "foregroundDeletion")),
                    (PODS, pod("p")),
                    (PODS, pod("q")),
                ],
                vec!["delete p Background", "delete q Background"],
            ),
            (
                "foreground: a blocking dependent being deleted still blocks",
                vec![
                    (REPLICA_SETS, deleting(rs(), "foregroundDeletion")),
                    (PODS, deleting(pod("p"), "example.com/x")),
                ],
                vec![],
            ),
            (
                "foreground: no blocking dependent left, finalizer removed",
                vec![
                    (REPLICA_SETS, deleting(rs(), "foregroundDeletion")),
                    (
                        PODS,
                        object(
                            "Pod",
                            "v1",
                            "p",
                            "shop",
                            &[
                                ("ReplicaSet", "rs-uid", false),
                                ("Deployment", "d-uid", false),
                            ],
                        ),
                    ),
                    (DEPLOYMENTS, deploy()),
                ],
                vec![
                    "update p refs=[d-uid] finalizers=[]",
                    "update rs refs=[d-uid!] finalizers=[]",
                ],
            ),
            (
                "foreground: cycle broken by unblocking",
                vec![
                    (DEPLOYMENTS, deleting(deploy(), "foregroundDeletion")),
                    (REPLICA_SETS, rs()),
                    (
                        PODS,
                        deleting(
                            object("Pod", "v1", "p", "shop", &[("ReplicaSet", "rs-uid", true)]),
                            "foregroundDeletion",
                        ),
                    ),
                ],
                // p (no dependents of its own) also loses its foregroundDeletion finalizer.
                vec![
                    "update rs refs=[d-uid] finalizers=[]",
                    "delete rs Foreground",
                    "update p refs=[rs-uid!] finalizers=[]",
                ],
            ),
            (
                "orphan: dependents released, then the owner's finalizer removed",
                vec![
                    (REPLICA_SETS, deleting(rs(), "orphan")),
                    (PODS, pod("p")),
                    (PODS, pod("q")),
                ],
                vec![
                    "update p refs=[] finalizers=[]",
                    "update q refs=[] finalizers=[]",
                    "update rs refs=[d-uid!] finalizers=[]",
                ],
            ),
            (
                "namespaced owner in another namespace counts as absent",
                vec![
                    (REPLICA_SETS, rs()),
                    (
                        PODS,
                        object("Pod", "v1", "p", "other", &[("ReplicaSet", "rs-uid", true)]),
                    ),
                ],
                vec!["delete rs Background", "delete p Background"],
            ),
            (
                "cluster-scoped dependent of a namespaced owner is never collected",
                vec![
                    (REPLICA_SETS, rs()),
                    (
                        NAMESPACES,
                        object(
                            "Namespace",
                            "v1",
                            "n",
                            "",
                            &[("ReplicaSet", "rs-uid", false)],
                        ),
                    ),
                    (
                        NAMESPACES,
                        object(
                            "Namespace",
                            "v1",
                            "m",
                            "",
                            &[("ReplicaSet", "gone-uid", false)],
                        ),
                    ),
                ],
                vec!["delete rs Background"],
            ),
        ];
        for (name, objects, want) in cases {
            assert_eq!(run(&objects), want, "{name}");
        }
    }

    #[test]
    fn owner_refs_parse_and_index_states() {
        let o = json!({"metadata": {"namespace": "a", "ownerReferences": [
            {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "rs", "uid": "u1", "controller": true, "blockOwnerDeletion": true},
            {"apiVersion": "v1", "kind": "Node", "name": "n"}]}});
        let refs = OwnerRef::of(&o);
        assert_eq!(refs.len(), 1);
        assert_eq!(refs[0].group(), "apps");
        assert!(refs[0].controller && refs[0].block_owner_deletion);
        let owner = json!({"apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": {"name": "rs", "namespace": "a", "uid": "u1",
            "deletionTimestamp": "2025-01-01T00:00:00Z", "finalizers": ["orphan"]}});
        let index = OwnerIndex::build(&[(REPLICA_SETS, owner)]);
        assert_eq!(
            index.state("a", &refs[0]),
            OwnerState::Present {
                deleting_foreground: false,
                deleting_orphan: true
            }
        );
        assert_eq!(index.state("b", &refs[0]), OwnerState::Absent);
        let mut renamed = refs[0].clone();
        renamed.name = "other".into();
        assert_eq!(index.state("a", &renamed), OwnerState::Absent);
    }
}
