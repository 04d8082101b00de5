//! The object store: the replicated state machine's state and what reads and watches see.
//!
//! Objects are JSON bytes keyed by (resource, namespace, name), where resource is the
//! group-qualified plural (`configmaps`, `deployments.apps`). The store's revision is the Raft
//! log index of the last applied entry, and every object's `metadata.resourceVersion` is the
//! index of the entry that last wrote it.
//!
//! Invariants:
//! - Only [`Store::apply_batch`] (called by the Raft state machine, in log order) and
//!   [`Store::install_snapshot`] change state. Conflicts (already exists, stale
//!   resourceVersion, uid precondition, missing namespace) are decided there, so every replica
//!   decides them the same way.
//! - Applying is deterministic: it uses only the command and the log index.
//! - Every change is persisted (redb, `state.redb`) together with the Raft module's opaque
//!   metadata (last applied log id, membership) in one transaction, then published to
//!   watchers, in revision order.
//! - Reads never touch disk: the full state is in memory, like kube-apiserver's watch cache.

pub mod command;
mod persist;
pub mod watch;

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use bytes::Bytes;
use serde_json::Value;

pub use command::{ApplyError, Command, CommandResult, Key, Precondition};
pub use watch::{EventType, WatchEvent, WatchHub, WatchStart};

/// Errors of the store's persistence.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// redb failed.
    #[error("state database {path}: {message}")]
    Db {
        /// The database file.
        path: String,
        /// What failed.
        message: String,
    },
    /// Stored bytes could not be decoded.
    #[error("state database holds a damaged record {key:?}: {message}")]
    Corrupt {
        /// The record.
        key: String,
        /// Why it is unreadable.
        message: String,
    },
}

impl From<StoreError> for std::io::Error {
    fn from(e: StoreError) -> Self {
        std::io::Error::other(e)
    }
}

/// One stored object: its JSON and what reads need without parsing it.
#[derive(Debug)]
pub struct StoredObject {
    /// Namespace ("" for cluster-scoped objects).
    pub namespace: String,
    /// Name.
    pub name: String,
    /// `metadata.uid`.
    pub uid: String,
    /// `metadata.resourceVersion`, as a number.
    pub resource_version: u64,
    /// `metadata.labels`.
    pub labels: BTreeMap<String, String>,
    /// `metadata.deletionTimestamp` is set.
    pub deleting: bool,
    /// `metadata.ownerReferences`, the fields controllers route events by.
    pub owners: Vec<OwnerRef>,
    /// The object's JSON, with `metadata.resourceVersion` set.
    pub json: Bytes,
    /// The parsed JSON, kept once asked for while this is the current version (like
    /// kube-apiserver's watch cache, which keeps decoded objects).
    parsed: ParseCache,
}

/// One entry of `metadata.ownerReferences`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
pub struct OwnerRef {
    /// The owner's kind.
    #[serde(default)]
    pub kind: String,
    /// The owner's name.
    #[serde(default)]
    pub name: String,
    /// The owner's uid.
    #[serde(default)]
    pub uid: String,
    /// Whether the owner is the managing controller.
    #[serde(default)]
    pub controller: Option<bool>,
}

#[derive(Debug, Default)]
struct ParseCache {
    slots: Mutex<Slots>,
    /// A newer version replaced this one (or it was deleted): parse without keeping.
    superseded: AtomicBool,
}

#[derive(Debug, Default)]
struct Slots {
    value: Option<Arc<Value>>,
    /// What a reader derived from the value (see [`StoredObject::derived`]).
    derived: Option<Arc<dyn std::any::Any + Send + Sync>>,
}

impl StoredObject {
    fn new(key: &Key, meta: MetaFields, json: Bytes) -> StoredObject {
        StoredObject {
            namespace: key.namespace.clone(),
            name: key.name.clone(),
            uid: meta.uid,
            resource_version: meta.resource_version.parse().unwrap_or(0),
            labels: meta.labels.unwrap_or_default(),
            deleting: meta.deletion_timestamp.is_some(),
            owners: meta.owner_references.unwrap_or_default(),
            json,
            parsed: ParseCache::default(),
        }
    }

    /// Parses the object's JSON into a value the caller owns.
    pub fn value(&self) -> Value {
        match self.cached() {
            Some(v) => Value::clone(&v),
            None => self.parse(),
        }
    }

    /// The parsed JSON, shared: parsed once per version while it is the current one.
    pub fn parsed(&self) -> Arc<Value> {
        if let Some(v) = self.cached() {
            return v;
        }
        let v = Arc::new(self.parse());
        // Checked under the lock `supersede` takes after setting the flag: a parse finishing
        // as a newer version lands is not kept.
        let mut slots = self.slots();
        if !self.parsed.superseded.load(Ordering::Acquire) {
            slots.value = Some(v.clone());
        }
        v
    }

    /// What `derive` makes of the parsed JSON, kept like the parse: derived once per version
    /// while it is the current one (a controller's summary of each pod, read on every sync).
    /// One derived value is kept per object, the first asked for: another type is derived
    /// anew on every call.
    pub fn derived<T: std::any::Any + Send + Sync>(&self, derive: fn(&Value) -> T) -> Arc<T> {
        if let Some(d) = self.slots().derived.clone().and_then(|d| d.downcast().ok()) {
            return d;
        }
        let d = Arc::new(derive(&self.parsed()));
        let mut slots = self.slots();
        if !self.parsed.superseded.load(Ordering::Acquire) && slots.derived.is_none() {
            slots.derived = Some(d.clone());
        }
        d
    }

    /// The name of the controller owner of `kind`, if any.
    pub fn controller_of(&self, kind: &str) -> Option<&str> {
        self.owners
            .iter()
            .find(|r| r.controller == Some(true) && r.kind == kind)
            .map(|r| r.name.as_str())
    }

    /// Whether any owner is a controller.
    pub fn has_controller(&self) -> bool {
        self.owners.iter().any(|r| r.controller == Some(true))
    }

    fn parse(&self) -> Value {
        serde_json::from_slice(&self.json).unwrap_or(Value::Null)
    }

    fn cached(&self) -> Option<Arc<Value>> {
        self.slots().value.clone()
    }

    fn slots(&self) -> std::sync::MutexGuard<'_, Slots> {
        self.parsed
            .slots
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Drops the parsed JSON for good: a newer version is current now.
    fn supersede(&self) {
        self.parsed.superseded.store(true, Ordering::Release);
        *self.slots() = Slots::default();
    }
}

type ObjectMap = BTreeMap<(String, String), Arc<StoredObject>>;

#[derive(Default)]
struct State {
    resources: HashMap<String, ObjectMap>,
    revision: u64,
    raft_meta: Option<Vec<u8>>,
}

/// The store. Cheap to share behind an `Arc`.
pub struct Store {
    state: RwLock<State>,
    hub: WatchHub,
    db: persist::StateDb,
    /// The parsed form of the JSON of local writes in flight, by where they write (see
    /// [`Store::offer_parsed`]).
    offered: Mutex<Offers>,
}

/// Parsed JSON offered by local writers, by key: each with the JSON it is the parse of.
type Offers = HashMap<Key, Vec<(Bytes, Value)>>;

/// A value offered to a write ([`Store::offer_parsed`]); dropping it withdraws the offer.
pub struct Offered<'s> {
    store: &'s Store,
    key: Key,
    /// The JSON offered with; `None` once withdrawn.
    json: Option<Bytes>,
}

impl Offered<'_> {
    /// Takes the value back: `None` when the write's apply took it.
    pub fn withdraw(mut self) -> Option<Value> {
        self.take()
    }

    /// Withdraws the offer, once: a second take could find another writer's offer of the
    /// same JSON at the same key.
    fn take(&mut self) -> Option<Value> {
        let json = self.json.take()?;
        take_offer(&mut self.store.offers(), &self.key, &json)
    }
}

impl Drop for Offered<'_> {
    fn drop(&mut self) {
        self.take();
    }
}

/// One entry to apply: its log index and, for application entries, the command.
pub struct ApplyEntry {
    /// The Raft log index.
    pub index: u64,
    /// `None` for Raft-internal entries (blank, membership): they only advance the revision.
    pub command: Option<Command>,
}

/// A page of a list.
pub struct ListPage {
    /// The matching objects, in key order.
    pub items: Vec<Arc<StoredObject>>,
    /// The store revision the list was read at.
    pub revision: u64,
    /// The (namespace, name) to continue after, when the page was cut by the limit.
    pub next: Option<(String, String)>,
    /// How many more objects match after this page.
    pub remaining: usize,
}

impl Store {
    /// Opens (or creates) the store in `dir`, loading all objects into memory.
    pub fn open(dir: &Path, watch_window: usize) -> Result<Store, StoreError> {
        let db = persist::StateDb::open(&dir.join("state.redb"))?;
        let loaded = db.load()?;
        let mut state = State {
            revision: loaded.revision,
            raft_meta: loaded.raft_meta,
            ..State::default()
        };
        for (key, json) in loaded.objects {
            let obj = index_object(&key, json, None).map_err(|message| StoreError::Corrupt {
                key: format!("{}/{}/{}", key.resource, key.namespace, key.name),
                message,
            })?;
            state
                .resources
                .entry(key.resource)
                .or_default()
                .insert((key.namespace, key.name), Arc::new(obj));
        }
        let revision = state.revision;
        Ok(Store {
            state: RwLock::new(state),
            hub: WatchHub::new(watch_window, revision),
            db,
            offered: Mutex::default(),
        })
    }

    /// Offers `value`, the parse of `json`, to the write of `json` at `key` the caller is
    /// about to propose: when that write is applied here, the stored version starts out
    /// parsed (its readers do not parse it again, nor does indexing it). The offer lasts
    /// until the returned guard is withdrawn or dropped.
    pub fn offer_parsed(&self, key: &Key, json: &Bytes, value: Value) -> Offered<'_> {
        self.offers()
            .entry(key.clone())
            .or_default()
            .push((json.clone(), value));
        Offered {
            store: self,
            key: key.clone(),
            json: Some(json.clone()),
        }
    }

    fn offers(&self) -> std::sync::MutexGuard<'_, Offers> {
        self.offered
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The revision of the last applied entry.
    pub fn revision(&self) -> u64 {
        self.read().revision
    }

    /// The Raft module's metadata, as stored with the last applied batch.
    pub fn raft_meta(&self) -> Option<Vec<u8>> {
        self.read().raft_meta.clone()
    }

    /// Watch events.
    pub fn hub(&self) -> &WatchHub {
        &self.hub
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, State> {
        self.state
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// One object.
    pub fn get(&self, resource: &str, namespace: &str, name: &str) -> Option<Arc<StoredObject>> {
        self.read()
            .resources
            .get(resource)?
            .get(&(namespace.to_string(), name.to_string()))
            .cloned()
    }

    /// Objects of `resource` (in `namespace` if given) that pass `filter`, in key order,
    /// starting after `after`, at most `limit` (0 = no limit).
    pub fn list(
        &self,
        resource: &str,
        namespace: Option<&str>,
        after: Option<(&str, &str)>,
        limit: usize,
        filter: &dyn Fn(&StoredObject) -> bool,
    ) -> ListPage {
        let state = self.read();
        let mut page = ListPage {
            items: Vec::new(),
            revision: state.revision,
            next: None,
            remaining: 0,
        };
        let Some(map) = state.resources.get(resource) else {
            return page;
        };
        use std::ops::Bound;
        let lower = match (after, namespace) {
            (Some((ns, name)), _) => Bound::Excluded((ns.to_string(), name.to_string())),
            (None, Some(ns)) => Bound::Included((ns.to_string(), String::new())),
            (None, None) => Bound::Unbounded,
        };
        for ((ns, _), obj) in map.range((lower, Bound::Unbounded)) {
            if let Some(want) = namespace
                && ns.as_str() != want
            {
                break;
            }
            if !filter(obj) {
                continue;
            }
            if limit > 0 && page.items.len() >= limit {
                page.remaining += 1;
                continue;
            }
            page.items.push(obj.clone());
        }
        if page.remaining > 0
            && let Some(last) = page.items.last()
        {
            page.next = Some((last.namespace.clone(), last.name.clone()));
        }
        page
    }

    /// Applies entries in log order, persists the result with `raft_meta` in one transaction,
    /// and publishes the watch events. Returns one result per entry.
    pub fn apply_batch(
        &self,
        entries: Vec<ApplyEntry>,
        raft_meta: Vec<u8>,
    ) -> Result<Vec<CommandResult>, StoreError> {
        let mut results = Vec::with_capacity(entries.len());
        let mut events = Vec::new();
        let mut writes: Vec<(Key, Option<Bytes>)> = Vec::new();
        let revision = {
            let mut state = self
                .state
                .write()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let mut offers = self.offers();
            for entry in entries {
                state.revision = state.revision.max(entry.index);
                let Some(cmd) = entry.command else {
                    results.push(CommandResult::Noop);
                    continue;
                };
                let result = apply_one(&mut state, &mut offers, entry.index, cmd, &mut events);
                results.push(result);
            }
            for ev in &events {
                let key = Key {
                    resource: ev.resource.to_string(),
                    namespace: ev.object.namespace.clone(),
                    name: ev.object.name.clone(),
                };
                let json = match ev.kind {
                    EventType::Deleted => None,
                    _ => Some(ev.object.json.clone()),
                };
                writes.push((key, json));
            }
            state.raft_meta = Some(raft_meta.clone());
            state.revision
        };
        self.db.write_batch(&writes, revision, &raft_meta)?;
        for ev in events {
            self.hub.publish(ev);
        }
        self.hub.advance(revision);
        Ok(results)
    }

    /// Makes everything applied so far durable (fsync).
    pub fn sync(&self) -> Result<(), StoreError> {
        self.db.sync()
    }

    /// The whole state as snapshot bytes, with the Raft metadata stored at that point.
    pub fn snapshot(&self) -> Result<(Option<Vec<u8>>, Vec<u8>), StoreError> {
        let state = self.read();
        let mut objects = Vec::new();
        for (resource, map) in &state.resources {
            for ((ns, name), obj) in map {
                objects.push((
                    Key {
                        resource: resource.clone(),
                        namespace: ns.clone(),
                        name: name.clone(),
                    },
                    obj.json.clone(),
                ));
            }
        }
        let snap = command::SnapshotData {
            revision: state.revision,
            objects,
        };
        let bytes = crate::codec::encode(&snap).map_err(|e| StoreError::Corrupt {
            key: "snapshot".into(),
            message: e.to_string(),
        })?;
        Ok((state.raft_meta.clone(), bytes))
    }

    /// Replaces the whole state with a snapshot taken by [`Store::snapshot`].
    pub fn install_snapshot(&self, bytes: &[u8], raft_meta: Vec<u8>) -> Result<(), StoreError> {
        let snap: command::SnapshotData =
            crate::codec::decode(bytes).map_err(|e| StoreError::Corrupt {
                key: "snapshot".into(),
                message: e.to_string(),
            })?;
        let mut resources: HashMap<String, ObjectMap> = HashMap::new();
        for (key, json) in &snap.objects {
            let obj =
                index_object(key, json.clone(), None).map_err(|message| StoreError::Corrupt {
                    key: format!("snapshot {}/{}/{}", key.resource, key.namespace, key.name),
                    message,
                })?;
            resources
                .entry(key.resource.clone())
                .or_default()
                .insert((key.namespace.clone(), key.name.clone()), Arc::new(obj));
        }
        self.db
            .replace_all(&snap.objects, snap.revision, &raft_meta)?;
        let mut state = self
            .state
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        state.resources = resources;
        state.revision = snap.revision;
        state.raft_meta = Some(raft_meta);
        self.hub.reset(snap.revision);
        Ok(())
    }
}

/// The value the API writes as `metadata.resourceVersion` of an object it proposes: applying
/// the entry puts the log index in its place without re-encoding the object.
pub const RV_MARKER: &str = "vkube:pending-resource-version";

/// The part of an object the store indexes (the rest is skipped, not built).
#[derive(serde::Deserialize)]
struct MetaView {
    metadata: MetaFields,
}

#[derive(serde::Deserialize, Default)]
struct MetaFields {
    #[serde(default)]
    uid: String,
    #[serde(default, rename = "resourceVersion")]
    resource_version: String,
    #[serde(default)]
    labels: Option<BTreeMap<String, String>>,
    #[serde(default, rename = "deletionTimestamp")]
    deletion_timestamp: Option<String>,
    #[serde(default, rename = "ownerReferences")]
    owner_references: Option<Vec<OwnerRef>>,
}

/// The position of the only occurrence of `needle` in `hay`, if it occurs exactly once.
fn find_unique(hay: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() {
        return None;
    }
    let mut hits = memchr::memmem::find_iter(hay, needle);
    match (hits.next(), hits.next()) {
        (Some(at), None) => Some(at),
        _ => None,
    }
}

/// `json` with `metadata.resourceVersion` set to `rv`: spliced in place of the API's marker
/// (or of the `current` value) when that occurs exactly once, else by re-encoding.
fn set_resource_version(json: &[u8], current: &str, rv: u64) -> Result<Bytes, String> {
    for from in [RV_MARKER, current] {
        if from.is_empty() {
            continue;
        }
        let pattern = format!("\"resourceVersion\":\"{from}\"");
        if let Some(pos) = find_unique(json, pattern.as_bytes()) {
            let replacement = format!("\"resourceVersion\":\"{rv}\"");
            let mut out = Vec::with_capacity(json.len() + replacement.len());
            out.extend_from_slice(&json[..pos]);
            out.extend_from_slice(replacement.as_bytes());
            out.extend_from_slice(&json[pos + pattern.len()..]);
            return Ok(Bytes::from(out));
        }
    }
    let mut value: Value = serde_json::from_slice(json).map_err(|e| e.to_string())?;
    value
        .get_mut("metadata")
        .and_then(Value::as_object_mut)
        .ok_or("object has no metadata")?
        .insert("resourceVersion".into(), Value::String(rv.to_string()));
    Ok(Bytes::from(
        serde_json::to_vec(&value).map_err(|e| e.to_string())?,
    ))
}

/// Builds the stored form of `json`, setting `metadata.resourceVersion` when `rv` is given.
fn index_object(key: &Key, json: Bytes, rv: Option<u64>) -> Result<StoredObject, String> {
    let json = match rv {
        Some(rv) => set_resource_version(&json, "", rv)?,
        None => json,
    };
    let meta = match serde_json::from_slice::<MetaView>(&json) {
        Ok(v) => v.metadata,
        // Unusual shapes (a label that is not a string): index what a full parse finds.
        Err(_) => meta_fields(&serde_json::from_slice(&json).map_err(|e| e.to_string())?)?,
    };
    Ok(StoredObject::new(key, meta, json))
}

/// The version `json` stores at `rv`; `parsed`, when its writer offered the parse of `json`,
/// is indexed instead of parsing the JSON again, and kept as the version's parse.
fn stored_version(
    key: &Key,
    json: Bytes,
    rv: u64,
    parsed: Option<Value>,
) -> Result<StoredObject, String> {
    let Some(mut value) = parsed else {
        return index_object(key, json, Some(rv));
    };
    let json = set_resource_version(&json, "", rv)?;
    if let Some(meta) = value.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.insert("resourceVersion".into(), Value::String(rv.to_string()));
    }
    let obj = StoredObject::new(key, meta_fields(&value)?, json);
    obj.slots().value = Some(Arc::new(value));
    Ok(obj)
}

/// The metadata fields a stored object indexes, read from its parsed JSON.
fn meta_fields(value: &Value) -> Result<MetaFields, String> {
    let meta = value.get("metadata").ok_or("object has no metadata")?;
    let text = |f: &str| {
        meta.get(f)
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string()
    };
    Ok(MetaFields {
        uid: text("uid"),
        resource_version: text("resourceVersion"),
        labels: meta.get("labels").and_then(Value::as_object).map(|l| {
            l.iter()
                .filter_map(|(k, v)| v.as_str().map(|v| (k.clone(), v.to_string())))
                .collect()
        }),
        deletion_timestamp: meta
            .get("deletionTimestamp")
            .and_then(Value::as_str)
            .map(str::to_string),
        owner_references: meta
            .get("ownerReferences")
            .and_then(|r| serde_json::from_value(r.clone()).ok()),
    })
}

/// Takes the value offered with `json` at `key`, if any.
fn take_offer(offers: &mut Offers, key: &Key, json: &Bytes) -> Option<Value> {
    let held = offers.get_mut(key)?;
    let i = held.iter().position(|(j, _)| j == json)?;
    let (_, value) = held.swap_remove(i);
    if held.is_empty() {
        offers.remove(key);
    }
    Some(value)
}

/// The stored form of `obj` as it is deleted at `rv`.
fn deleted_at(key: &Key, obj: &StoredObject, rv: u64) -> Arc<StoredObject> {
    obj.supersede();
    let (json, resource_version) =
        match set_resource_version(&obj.json, &obj.resource_version.to_string(), rv) {
            Ok(json) => (json, rv),
            Err(_) => (obj.json.clone(), obj.resource_version),
        };
    let tombstone = StoredObject {
        namespace: key.namespace.clone(),
        name: key.name.clone(),
        uid: obj.uid.clone(),
        resource_version,
        labels: obj.labels.clone(),
        deleting: obj.deleting,
        owners: obj.owners.clone(),
        json,
        parsed: ParseCache::default(),
    };
    tombstone.supersede();
    Arc::new(tombstone)
}

/// The ClusterIPs and node ports a Service holds.
fn service_allocations(json: &[u8]) -> (Vec<String>, Vec<i64>) {
    let Ok(v) = serde_json::from_slice::<Value>(json) else {
        return (vec![], vec![]);
    };
    let mut ips: Vec<String> = v
        .pointer("/spec/clusterIPs")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    if let Some(ip) = v.pointer("/spec/clusterIP").and_then(Value::as_str) {
        ips.push(ip.to_string());
    }
    ips.retain(|ip| !ip.is_empty() && ip != "None");
    ips.sort();
    ips.dedup();
    let mut ports: Vec<i64> = v
        .pointer("/spec/ports")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|p| p.get("nodePort").and_then(Value::as_i64))
                .filter(|p| *p > 0)
                .collect()
        })
        .unwrap_or_default();
    ports.sort();
    ports.dedup();
    (ips, ports)
}

/// Whether the Service `json` at `key` claims a ClusterIP or node port another Service holds.
fn service_clash(state: &State, key: &Key, json: &[u8]) -> bool {
    let (ips, ports) = service_allocations(json);
    if ips.is_empty() && ports.is_empty() {
        return false;
    }
    let Some(services) = state.resources.get("services") else {
        return false;
    };
    services.iter().any(|((ns, name), other)| {
        if *ns == key.namespace && *name == key.name {
            return false;
        }
        let (other_ips, other_ports) = service_allocations(&other.json);
        ips.iter().any(|ip| other_ips.contains(ip)) || ports.iter().any(|p| other_ports.contains(p))
    })
}

fn apply_one(
    state: &mut State,
    offers: &mut Offers,
    index: u64,
    cmd: Command,
    events: &mut Vec<WatchEvent>,
) -> CommandResult {
    match cmd {
        Command::Create { key, object } => {
            if !key.namespace.is_empty() {
                let ns_exists = state
                    .resources
                    .get("namespaces")
                    .is_some_and(|m| m.contains_key(&(String::new(), key.namespace.clone())));
                if !ns_exists {
                    return CommandResult::Failed(ApplyError::NamespaceNotFound);
                }
            }
            if key.resource == "services" && service_clash(state, &key, &object) {
                return CommandResult::Failed(ApplyError::AllocationConflict);
            }
            let map = state.resources.entry(key.resource.clone()).or_default();
            let map_key = (key.namespace.clone(), key.name.clone());
            if map.contains_key(&map_key) {
                return CommandResult::Failed(ApplyError::AlreadyExists);
            }
            let parsed = take_offer(offers, &key, &object);
            let obj = match stored_version(&key, object, index, parsed) {
                Ok(o) => Arc::new(o),
                Err(e) => return CommandResult::Failed(ApplyError::BadObject(e)),
            };
            map.insert(map_key, obj.clone());
            events.push(WatchEvent::new(
                index,
                EventType::Added,
                &key.resource,
                obj.clone(),
                None,
            ));
            CommandResult::Stored(obj.json.clone())
        }
        Command::Update {
            key,
            expected_rv,
            object,
        } => {
            if key.resource == "services" && service_clash(state, &key, &object) {
                return CommandResult::Failed(ApplyError::AllocationConflict);
            }
            let Some(map) = state.resources.get_mut(&key.resource) else {
                return CommandResult::Failed(ApplyError::NotFound);
            };
            let map_key = (key.namespace.clone(), key.name.clone());
            let Some(current) = map.get(&map_key) else {
                return CommandResult::Failed(ApplyError::NotFound);
            };
            if current.resource_version != expected_rv {
                return CommandResult::Failed(ApplyError::Conflict);
            }
            let parsed = take_offer(offers, &key, &object);
            let obj = match stored_version(&key, object, index, parsed) {
                Ok(o) => Arc::new(o),
                Err(e) => return CommandResult::Failed(ApplyError::BadObject(e)),
            };
            if obj.uid != current.uid {
                return CommandResult::Failed(ApplyError::UidMismatch);
            }
            let prev = map.insert(map_key, obj.clone());
            if let Some(p) = &prev {
                p.supersede();
            }
            events.push(WatchEvent::new(
                index,
                EventType::Modified,
                &key.resource,
                obj.clone(),
                prev,
            ));
            CommandResult::Stored(obj.json.clone())
        }
        Command::Delete { key, precondition } => {
            let Some(map) = state.resources.get_mut(&key.resource) else {
                return CommandResult::Failed(ApplyError::NotFound);
            };
            let map_key = (key.namespace.clone(), key.name.clone());
            let Some(current) = map.get(&map_key) else {
                return CommandResult::Failed(ApplyError::NotFound);
            };
            if let Some(uid) = &precondition.uid
                && *uid != current.uid
            {
                return CommandResult::Failed(ApplyError::UidPrecondition {
                    actual: current.uid.clone(),
                });
            }
            if let Some(rv) = precondition.resource_version
                && rv != current.resource_version
            {
                return CommandResult::Failed(ApplyError::RvPrecondition {
                    actual: current.resource_version,
                });
            }
            let Some(removed) = map.remove(&map_key) else {
                return CommandResult::Failed(ApplyError::NotFound);
            };
            let tombstone = deleted_at(&key, &removed, index);
            events.push(WatchEvent::new(
                index,
                EventType::Deleted,
                &key.resource,
                tombstone.clone(),
                None,
            ));
            CommandResult::Stored(tombstone.json.clone())
        }
    }
}

/// Helpers for tests that drive a store directly.
#[cfg(test)]
pub(crate) mod testing {
    use super::{ApplyEntry, Command, CommandResult, Key, Store};

    pub(crate) fn key(resource: &str, ns: &str, name: &str) -> Key {
        Key {
            resource: resource.into(),
            namespace: ns.into(),
            name: name.into(),
        }
    }

    /// Creates `object` (its metadata names it) as log entry `index`, or replaces the stored
    /// one at its current resourceVersion.
    pub(crate) fn put(store: &Store, index: u64, resource: &str, object: &serde_json::Value) {
        let ns = object["metadata"]["namespace"].as_str().unwrap_or("");
        let name = object["metadata"]["name"].as_str().expect("a name");
        let bytes = bytes::Bytes::from(serde_json::to_vec(object).expect("json"));
        let key = key(resource, ns, name);
        let command = match store.get(resource, ns, name) {
            None => Command::Create { key, object: bytes },
            Some(stored) => Command::Update {
                key,
                expected_rv: stored.resource_version,
                object: bytes,
            },
        };
        apply(store, index, command);
    }

    /// Applies `command` as log entry `index`.
    pub(crate) fn apply(store: &Store, index: u64, command: Command) -> CommandResult {
        store
            .apply_batch(
                vec![ApplyEntry {
                    index,
                    command: Some(command),
                }],
                vec![],
            )
            .expect("apply")
            .remove(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obj(ns: &str, name: &str, uid: &str, labels: &[(&str, &str)]) -> Bytes {
        let labels: serde_json::Map<String, Value> = labels
            .iter()
            .map(|(k, v)| (k.to_string(), Value::String(v.to_string())))
            .collect();
        Bytes::from(
            serde_json::to_vec(&serde_json::json!({
                "apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": name, "namespace": ns, "uid": uid, "labels": labels},
            }))
            .expect("json"),
        )
    }

    use super::testing::{apply, key};

    fn ns(name: &str) -> Command {
        Command::Create {
            key: key("namespaces", "", name),
            object: Bytes::from(format!(
                r#"{{"apiVersion":"v1","kind":"Namespace","metadata":{{"name":"{name}","uid":"ns-{name}"}}}}"#
            )),
        }
    }

    #[test]
    fn resource_version_is_spliced_only_when_the_marker_is_unique() {
        // A long quote-free tail after the marker must not hide the match.
        let tail = "1".repeat(80);
        let doc = format!(r#"{{"metadata":{{"resourceVersion":"{RV_MARKER}"}},"n":{tail}}}"#);
        let pattern = format!(r#""resourceVersion":"{RV_MARKER}""#);
        assert_eq!(find_unique(doc.as_bytes(), pattern.as_bytes()), Some(13));
        let spliced = set_resource_version(doc.as_bytes(), "", 42).expect("splice");
        assert_eq!(
            String::from_utf8_lossy(&spliced),
            format!(r#"{{"metadata":{{"resourceVersion":"42"}},"n":{tail}}}"#)
        );
        // Two occurrences: no splice position; the full re-encode sets metadata's only.
        let twice = format!(
            r#"{{"spec":{{"resourceVersion":"{RV_MARKER}"}},"metadata":{{"resourceVersion":"{RV_MARKER}"}}}}"#
        );
        assert_eq!(find_unique(twice.as_bytes(), pattern.as_bytes()), None);
        let fixed: Value =
            serde_json::from_slice(&set_resource_version(twice.as_bytes(), "", 7).expect("encode"))
                .expect("json");
        assert_eq!(fixed["metadata"]["resourceVersion"], "7");
        assert_eq!(fixed["spec"]["resourceVersion"], RV_MARKER);
    }

    #[test]
    fn conflicts_are_decided_in_apply() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(dir.path(), 100).expect("open");
        let create = || Command::Create {
            key: key("configmaps", "a", "x"),
            object: obj("a", "x", "u1", &[]),
        };
        assert!(matches!(
            apply(&store, 1, create()),
            CommandResult::Failed(ApplyError::NamespaceNotFound)
        ));
        assert!(matches!(
            apply(&store, 2, ns("a")),
            CommandResult::Stored(_)
        ));
        let CommandResult::Stored(json) = apply(&store, 3, create()) else {
            panic!("create failed")
        };
        assert!(String::from_utf8_lossy(&json).contains(r#""resourceVersion":"3""#));
        assert!(matches!(
            apply(&store, 4, create()),
            CommandResult::Failed(ApplyError::AlreadyExists)
        ));
        let update = |rv| Command::Update {
            key: key("configmaps", "a", "x"),
            expected_rv: rv,
            object: obj("a", "x", "u1", &[("k", "v")]),
        };
        assert!(matches!(
            apply(&store, 5, update(2)),
            CommandResult::Failed(ApplyError::Conflict)
        ));
        assert!(matches!(
            apply(&store, 6, update(3)),
            CommandResult::Stored(_)
        ));
        assert_eq!(
            store
                .get("configmaps", "a", "x")
                .expect("exists")
                .resource_version,
            6
        );
        let del = |uid: &str| Command::Delete {
            key: key("configmaps", "a", "x"),
            precondition: Precondition {
                uid: Some(uid.into()),
                resource_version: None,
            },
        };
        assert!(matches!(
            apply(&store, 7, del("other")),
            CommandResult::Failed(ApplyError::UidPrecondition { .. })
        ));
        assert!(matches!(
            apply(&store, 8, del("u1")),
            CommandResult::Stored(_)
        ));
        assert!(store.get("configmaps", "a", "x").is_none());
        assert_eq!(store.revision(), 8);
    }

    #[test]
    fn parsed_objects_are_shared_while_current_and_owners_are_indexed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(dir.path(), 100).expect("open");
        apply(&store, 1, ns("a"));
        let owned = |data: &str| {
            Bytes::from(
                serde_json::to_vec(&serde_json::json!({
                    "apiVersion": "v1", "kind": "ConfigMap", "data": {"d": data},
                    "metadata": {"name": "x", "namespace": "a", "uid": "u1",
                        "ownerReferences": [
                            {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "rs",
                             "uid": "o1", "controller": true},
                            {"apiVersion": "v1", "kind": "ConfigMap", "name": "cm", "uid": "o2"}]},
                }))
                .expect("json"),
            )
        };
        apply(
            &store,
            2,
            Command::Create {
                key: key("configmaps", "a", "x"),
                object: owned("one"),
            },
        );
        let first = store.get("configmaps", "a", "x").expect("stored");
        assert_eq!(first.controller_of("ReplicaSet"), Some("rs"));
        assert_eq!(first.controller_of("ConfigMap"), None);
        assert!(first.has_controller());
        assert_eq!(first.owners.len(), 2);
        let parsed = first.parsed();
        assert_eq!(parsed["data"]["d"], "one");
        assert_eq!(parsed["metadata"]["resourceVersion"], "2");
        // The same version hands out the same parse; an owned copy is equal.
        assert!(Arc::ptr_eq(&parsed, &first.parsed()));
        assert_eq!(first.value(), *parsed);
        // So does a derived value; another type is derived anew and not kept.
        let data = |v: &Value| v["data"]["d"].as_str().unwrap_or("").to_string();
        let derived = first.derived(data);
        assert_eq!(*derived, "one");
        assert!(Arc::ptr_eq(&derived, &first.derived(data)));
        assert!(*first.derived(|v| v["data"]["d"] == "one"));
        assert!(Arc::ptr_eq(&derived, &first.derived(data)));
        apply(
            &store,
            3,
            Command::Update {
                key: key("configmaps", "a", "x"),
                expected_rv: 2,
                object: owned("two"),
            },
        );
        // The replaced version keeps no parse; it still parses right when asked.
        assert!(first.cached().is_none());
        assert_eq!(first.parsed()["data"]["d"], "one");
        assert!(first.cached().is_none());
        assert_eq!(*first.derived(data), "one");
        assert!(!Arc::ptr_eq(&first.derived(data), &first.derived(data)));
        let second = store.get("configmaps", "a", "x").expect("stored");
        assert_eq!(second.parsed()["data"]["d"], "two");
        assert!(second.cached().is_some());
        assert_eq!(*second.derived(data), "two");
    }

    #[test]
    fn a_version_written_with_its_parse_offered_starts_out_parsed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(dir.path(), 100).expect("open");
        apply(&store, 1, ns("a"));
        let value = |d: &str| {
            serde_json::json!({
                "apiVersion": "v1", "kind": "ConfigMap", "data": {"d": d},
                "metadata": {"name": "x", "namespace": "a", "uid": "u1",
                    "resourceVersion": RV_MARKER, "labels": {"app": "web"},
                    "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet",
                        "name": "rs", "uid": "o1", "controller": true}]},
            })
        };
        let json = |v: &Value| Bytes::from(serde_json::to_vec(v).expect("json"));
        let (one, k) = (value("one"), key("configmaps", "a", "x"));
        let offered = store.offer_parsed(&k, &json(&one), one.clone());
        let created = Command::Create {
            key: k.clone(),
            object: json(&one),
        };
        assert!(matches!(
            apply(&store, 2, created),
            CommandResult::Stored(_)
        ));
        assert!(offered.withdraw().is_none(), "the write took the value");
        let stored = store.get("configmaps", "a", "x").expect("stored");
        let cached = stored.cached().expect("parsed from the start");
        assert_eq!(*cached, stored.parse(), "the parse of the JSON stored");
        assert_eq!(cached["metadata"]["resourceVersion"], "2");
        assert_eq!(stored.resource_version, 2);
        assert_eq!(stored.labels.get("app").map(String::as_str), Some("web"));
        assert_eq!(stored.controller_of("ReplicaSet"), Some("rs"));

        // A write that fails (here a stale resourceVersion) leaves the value to its writer;
        // one offered with other JSON is not taken, and a dropped offer is gone.
        let two = value("two");
        let offered = store.offer_parsed(&k, &json(&two), two.clone());
        let stale = Command::Update {
            key: k.clone(),
            expected_rv: 1,
            object: json(&two),
        };
        // A second writer offers the same JSON at the same key: each takes back one offer.
        let twin = store.offer_parsed(&k, &json(&two), two.clone());
        assert!(matches!(apply(&store, 3, stale), CommandResult::Failed(_)));
        assert_eq!(offered.withdraw(), Some(two.clone()));
        assert_eq!(
            twin.withdraw(),
            Some(two.clone()),
            "the twin's offer outlives the first"
        );
        let other = store.offer_parsed(&k, &json(&value("three")), two.clone());
        let update = Command::Update {
            key: k.clone(),
            expected_rv: 2,
            object: json(&two),
        };
        assert!(matches!(apply(&store, 4, update), CommandResult::Stored(_)));
        let stored = store.get("configmaps", "a", "x").expect("stored");
        assert!(stored.cached().is_none(), "parsed only when asked");
        assert_eq!(stored.parsed()["data"]["d"], "two");
        drop(other);
        assert!(store.offers().is_empty());
    }

    #[test]
    fn state_survives_reopen_after_sync() {
        let dir = tempfile::tempdir().expect("tempdir");
        {
            let store = Store::open(dir.path(), 100).expect("open");
            apply(&store, 1, ns("a"));
            apply(
                &store,
                2,
                Command::Create {
                    key: key("configmaps", "a", "x"),
                    object: obj("a", "x", "u", &[("app", "web")]),
                },
            );
            store.sync().expect("sync");
        }
        let store = Store::open(dir.path(), 100).expect("reopen");
        assert_eq!(store.revision(), 2);
        let got = store.get("configmaps", "a", "x").expect("persisted");
        assert_eq!(got.labels.get("app").map(String::as_str), Some("web"));
    }

    #[test]
    fn list_pages_and_namespace_deletion_is_not_a_cascade() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(dir.path(), 100).expect("open");
        apply(&store, 1, ns("a"));
        apply(&store, 2, ns("b"));
        for (i, (n, name)) in [("a", "1"), ("a", "2"), ("a", "3"), ("b", "1")]
            .iter()
            .enumerate()
        {
            apply(
                &store,
                3 + i as u64,
                Command::Create {
                    key: key("configmaps", n, name),
                    object: obj(n, name, name, &[]),
                },
            );
        }
        let page = store.list("configmaps", Some("a"), None, 2, &|_| true);
        assert_eq!(page.items.len(), 2);
        assert_eq!(page.remaining, 1);
        let (ns_after, name_after) = page.next.expect("more");
        let page2 = store.list(
            "configmaps",
            Some("a"),
            Some((&ns_after, &name_after)),
            2,
            &|_| true,
        );
        assert_eq!(
            page2
                .items
                .iter()
                .map(|o| o.name.as_str())
                .collect::<Vec<_>>(),
            vec!["3"]
        );
        assert_eq!(
            store
                .list("configmaps", None, None, 0, &|_| true)
                .items
                .len(),
            4
        );
        // Deleting a namespace removes only the namespace: emptying it is the namespace
        // controller's work, through ordinary deletes.
        apply(
            &store,
            10,
            Command::Delete {
                key: key("namespaces", "", "a"),
                precondition: Precondition::default(),
            },
        );
        assert!(store.get("namespaces", "", "a").is_none());
        assert_eq!(
            store
                .list("configmaps", None, None, 0, &|_| true)
                .items
                .len(),
            4
        );
    }
}
