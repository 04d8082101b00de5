//! Wire types of the replicated log: what a write proposes and what applying it returned.
//! Explicit, versioned (through `codec`) types; objects inside are JSON bytes.

use bytes::Bytes;
use serde::{Deserialize, Serialize};

/// Where an object lives.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Key {
    /// Group-qualified plural: `configmaps`, `deployments.apps`.
    pub resource: String,
    /// Namespace, "" for cluster-scoped objects.
    pub namespace: String,
    /// Name.
    pub name: String,
}

/// Conditions a delete must meet (DeleteOptions.preconditions).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Precondition {
    /// The object's uid must be this.
    pub uid: Option<String>,
    /// The object's resourceVersion must be this.
    pub resource_version: Option<u64>,
}

/// A write, decided when applied.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Command {
    /// Create; fails if the object exists or its namespace does not.
    Create {
        /// Where.
        key: Key,
        /// The object's JSON (uid, creationTimestamp already set).
        object: Bytes,
    },
    /// Replace; fails unless the stored resourceVersion is `expected_rv`.
    Update {
        /// Where.
        key: Key,
        /// The resourceVersion the change was computed from.
        expected_rv: u64,
        /// The new JSON.
        object: Bytes,
    },
    /// Delete, subject to preconditions.
    Delete {
        /// Where.
        key: Key,
        /// Preconditions.
        precondition: Precondition,
    },
}

impl std::fmt::Display for Command {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (verb, key) = match self {
            Command::Create { key, .. } => ("create", key),
            Command::Update { key, .. } => ("update", key),
            Command::Delete { key, .. } => ("delete", key),
        };
        write!(f, "{verb} {}/{}/{}", key.resource, key.namespace, key.name)
    }
}

/// Why applying a command changed nothing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum ApplyError {
    /// Create of an existing object.
    #[error("already exists")]
    AlreadyExists,
    /// Update or delete of a missing object.
    #[error("not found")]
    NotFound,
    /// The object changed since the write was computed.
    #[error("the object has been modified")]
    Conflict,
    /// The object's namespace does not exist.
    #[error("namespace not found")]
    NamespaceNotFound,
    /// The uid precondition failed.
    #[error("uid precondition failed: the object's uid is {actual}")]
    UidPrecondition {
        /// The stored uid.
        actual: String,
    },
    /// The resourceVersion precondition failed.
    #[error("resourceVersion precondition failed: the object's resourceVersion is {actual}")]
    RvPrecondition {
        /// The stored resourceVersion.
        actual: u64,
    },
    /// An update tried to change the uid.
    #[error("the uid of an object cannot change")]
    UidMismatch,
    /// A Service's ClusterIP or node port is already held by another Service.
    #[error("a ClusterIP or node port of this Service is already allocated")]
    AllocationConflict,
    /// The JSON is unusable (the API validates first, so this is a bug upstream of apply).
    #[error("unusable object: {0}")]
    BadObject(String),
}

/// What applying one entry returned.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum CommandResult {
    /// A Raft-internal entry.
    Noop,
    /// The object as stored (for a delete: as it was, with the deleting resourceVersion).
    Stored(Bytes),
    /// Nothing changed.
    Failed(ApplyError),
}

/// The state as a snapshot carries it.
#[derive(Debug, Serialize, Deserialize)]
pub struct SnapshotData {
    /// The revision it was taken at.
    pub revision: u64,
    /// Every object.
    pub objects: Vec<(Key, Bytes)>,
}
