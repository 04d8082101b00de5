//! The state machine's redb file: objects, the revision and the Raft module's metadata.
//!
//! Batches are committed without fsync (`Durability::None`): the Raft log is the durable
//! record, and after a crash the state machine reopens at its last durable commit and the log
//! tail is applied again. [`StateDb::sync`] (called before a snapshot lets the log be purged)
//! makes everything durable.

use std::path::{Path, PathBuf};

use bytes::Bytes;
use redb::{Database, Durability, ReadableDatabase, ReadableTable, TableDefinition};

use super::StoreError;
use super::command::Key;

const OBJECTS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("objects");
const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");

pub(super) struct StateDb {
    db: Database,
    path: PathBuf,
}

pub(super) struct Loaded {
    pub objects: Vec<(Key, Bytes)>,
    pub revision: u64,
    pub raft_meta: Option<Vec<u8>>,
}

fn db_key(key: &Key) -> Vec<u8> {
    let mut out = Vec::with_capacity(key.resource.len() + key.namespace.len() + key.name.len() + 2);
    out.extend_from_slice(key.resource.as_bytes());
    out.push(0);
    out.extend_from_slice(key.namespace.as_bytes());
    out.push(0);
    out.extend_from_slice(key.name.as_bytes());
    out
}

fn parse_key(raw: &[u8]) -> Option<Key> {
    let mut parts = raw.split(|b| *b == 0);
    let resource = String::from_utf8(parts.next()?.to_vec()).ok()?;
    let namespace = String::from_utf8(parts.next()?.to_vec()).ok()?;
    let name = String::from_utf8(parts.next()?.to_vec()).ok()?;
    Some(Key {
        resource,
        namespace,
        name,
    })
}

impl StateDb {
    pub fn open(path: &Path) -> Result<StateDb, StoreError> {
        let err = |e: &dyn std::fmt::Display| StoreError::Db {
            path: path.display().to_string(),
            message: e.to_string(),
        };
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| err(&e))?;
        }
        let db = Database::builder()
            .set_cache_size(8 << 20)
            .create(path)
            .map_err(|e| err(&e))?;
        let me = StateDb {
            db,
            path: path.to_path_buf(),
        };
        // Create the tables so that reads of a fresh database work.
        let mut txn = me.db.begin_write().map_err(|e| me.err(e))?;
        txn.set_durability(Durability::Immediate)
            .map_err(|e| me.err(e))?;
        txn.open_table(OBJECTS).map_err(|e| me.err(e))?;
        txn.open_table(META).map_err(|e| me.err(e))?;
        txn.commit().map_err(|e| me.err(e))?;
        Ok(me)
    }

    fn err(&self, e: impl std::fmt::Display) -> StoreError {
        StoreError::Db {
            path: self.path.display().to_string(),
            message: e.to_string(),
        }
    }

    pub fn load(&self) -> Result<Loaded, StoreError> {
        let txn = self.db.begin_read().map_err(|e| self.err(e))?;
        let objects_table = txn.open_table(OBJECTS).map_err(|e| self.err(e))?;
        let mut objects = Vec::new();
        for row in objects_table.iter().map_err(|e| self.err(e))? {
            let (k, v) = row.map_err(|e| self.err(e))?;
            let key = parse_key(k.value()).ok_or_else(|| StoreError::Corrupt {
                key: String::from_utf8_lossy(k.value()).into_owned(),
                message: "malformed key".into(),
            })?;
            objects.push((key, Bytes::copy_from_slice(v.value())));
        }
        let meta = txn.open_table(META).map_err(|e| self.err(e))?;
        let revision = match meta.get("revision").map_err(|e| self.err(e))? {
            Some(v) => {
                let raw: [u8; 8] = v.value().try_into().map_err(|_| StoreError::Corrupt {
                    key: "revision".into(),
                    message: "not 8 bytes".into(),
                })?;
                u64::from_be_bytes(raw)
            }
            None => 0,
        };
        let raft_meta = meta
            .get("raft")
            .map_err(|e| self.err(e))?
            .map(|v| v.value().to_vec());
        Ok(Loaded {
            objects,
            revision,
            raft_meta,
        })
    }

    pub fn write_batch(
        &self,
        writes: &[(Key, Option<Bytes>)],
        revision: u64,
        raft_meta: &[u8],
    ) -> Result<(), StoreError> {
        let mut txn = self.db.begin_write().map_err(|e| self.err(e))?;
        txn.set_durability(Durability::None)
            .map_err(|e| self.err(e))?;
        {
            let mut objects = txn.open_table(OBJECTS).map_err(|e| self.err(e))?;
            for (key, json) in writes {
                let k = db_key(key);
                match json {
                    Some(j) => {
                        objects
                            .insert(k.as_slice(), j.as_ref())
                            .map_err(|e| self.err(e))?;
                    }
                    None => {
                        objects.remove(k.as_slice()).map_err(|e| self.err(e))?;
                    }
                }
            }
            let mut meta = txn.open_table(META).map_err(|e| self.err(e))?;
            meta.insert("revision", revision.to_be_bytes().as_slice())
                .map_err(|e| self.err(e))?;
            meta.insert("raft", raft_meta).map_err(|e| self.err(e))?;
        }
        txn.commit().map_err(|e| self.err(e))
    }

    pub fn replace_all(
        &self,
        objects: &[(Key, Bytes)],
        revision: u64,
        raft_meta: &[u8],
    ) -> Result<(), StoreError> {
        let mut txn = self.db.begin_write().map_err(|e| self.err(e))?;
        txn.set_durability(Durability::Immediate)
            .map_err(|e| self.err(e))?;
        txn.delete_table(OBJECTS).map_err(|e| self.err(e))?;
        {
            let mut table = txn.open_table(OBJECTS).map_err(|e| self.err(e))?;
            for (key, json) in objects {
                table
                    .insert(db_key(key).as_slice(), json.as_ref())
                    .map_err(|e| self.err(e))?;
            }
            let mut meta = txn.open_table(META).map_err(|e| self.err(e))?;
            meta.insert("revision", revision.to_be_bytes().as_slice())
                .map_err(|e| self.err(e))?;
            meta.insert("raft", raft_meta).map_err(|e| self.err(e))?;
        }
        txn.commit().map_err(|e| self.err(e))
    }

    /// An empty durable commit makes every earlier non-durable commit durable.
    pub fn sync(&self) -> Result<(), StoreError> {
        let mut txn = self.db.begin_write().map_err(|e| self.err(e))?;
        txn.set_durability(Durability::Immediate)
            .map_err(|e| self.err(e))?;
        txn.commit().map_err(|e| self.err(e))
    }
}
