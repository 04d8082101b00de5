//! The state machine's redb file: objects, the revision and the Raft module's metadata.
//!
//! The Raft log is the durable record: after a crash the state machine reopens at its last
//! durable commit and the log tail is applied again. So applied batches are not committed one
//! by one: they are merged into a pending set (the last write per key wins, with the newest
//! revision and Raft metadata) and written in one transaction when the set grows large
//! (without fsync, `Durability::None`), or when [`StateDb::sync`] (called before a snapshot lets
//! the log be purged) makes everything durable. A non-durable redb commit is not on disk until
//! a durable one follows, so writing later changes nothing a crash could observe; it only
//! turns one copy-on-write commit per batch into one per few thousand objects.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use bytes::Bytes;
use redb::{Database, Durability, ReadableDatabase, ReadableTable, TableDefinition};

use super::StoreError;
use super::command::Key;

const OBJECTS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("objects");
const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");

pub(super) struct StateDb {
    db: Database,
    path: PathBuf,
    pending: Mutex<Pending>,
}

/// Applied writes not yet handed to redb.
#[derive(Default)]
struct Pending {
    /// The newest value per encoded key; `None` deletes.
    writes: HashMap<Vec<u8>, Option<Bytes>>,
    /// The revision and Raft metadata of the newest merged batch, if any.
    head: Option<(u64, Vec<u8>)>,
}

/// How many distinct keys may wait before they are written (without fsync). It bounds the
/// memory the pending set holds on to; the values share the store's bytes.
const PENDING_KEYS: usize = 4096;

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
            pending: Mutex::default(),
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

    /// Records an applied batch: its writes (`None` deletes), the revision after it and the
    /// Raft metadata. Written to redb with later batches, see the module docs.
    pub fn write_batch(
        &self,
        writes: &[(Key, Option<Bytes>)],
        revision: u64,
        raft_meta: &[u8],
    ) -> Result<(), StoreError> {
        let mut pending = self.lock_pending();
        for (key, json) in writes {
            pending.writes.insert(db_key(key), json.clone());
        }
        pending.head = Some((revision, raft_meta.to_vec()));
        if pending.writes.len() >= PENDING_KEYS {
            self.flush(&mut pending, Durability::None)?;
        }
        Ok(())
    }

    fn lock_pending(&self) -> std::sync::MutexGuard<'_, Pending> {
        self.pending
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Writes the pending set in one transaction of the given durability; an empty set still
    /// commits, so a durable flush makes every earlier commit durable.
    fn flush(&self, pending: &mut Pending, durability: Durability) -> Result<(), StoreError> {
        let mut txn = self.db.begin_write().map_err(|e| self.err(e))?;
        txn.set_durability(durability).map_err(|e| self.err(e))?;
        {
            let mut objects = txn.open_table(OBJECTS).map_err(|e| self.err(e))?;
            for (k, json) in &pending.writes {
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
            if let Some((revision, raft_meta)) = &pending.head {
                let mut meta = txn.open_table(META).map_err(|e| self.err(e))?;
                meta.insert("revision", revision.to_be_bytes().as_slice())
                    .map_err(|e| self.err(e))?;
                meta.insert("raft", raft_meta.as_slice())
                    .map_err(|e| self.err(e))?;
            }
        }
        txn.commit().map_err(|e| self.err(e))?;
        *pending = Pending::default();
        Ok(())
    }

    pub fn replace_all(
        &self,
        objects: &[(Key, Bytes)],
        revision: u64,
        raft_meta: &[u8],
    ) -> Result<(), StoreError> {
        let mut pending = self.lock_pending();
        *pending = Pending::default();
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

    /// Writes what is pending and makes it, with every earlier commit, durable.
    pub fn sync(&self) -> Result<(), StoreError> {
        let mut pending = self.lock_pending();
        self.flush(&mut pending, Durability::Immediate)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(name: &str) -> Key {
        Key {
            resource: "configmaps".into(),
            namespace: "a".into(),
            name: name.into(),
        }
    }

    fn names(db: &StateDb) -> Vec<String> {
        let mut out: Vec<String> = db
            .load()
            .expect("load")
            .objects
            .into_iter()
            .map(|(k, _)| k.name)
            .collect();
        out.sort();
        out
    }

    #[test]
    fn batches_wait_until_sync_or_the_pending_bound() {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = StateDb::open(&dir.path().join("state.redb")).expect("open");
        let put = |name: &str| (key(name), Some(Bytes::from_static(b"{}")));
        db.write_batch(&[put("x"), put("y")], 2, b"m2")
            .expect("write");
        db.write_batch(&[(key("y"), None)], 3, b"m3")
            .expect("write");
        assert!(names(&db).is_empty(), "nothing is written before sync");
        db.sync().expect("sync");
        let loaded = db.load().expect("load");
        assert_eq!(names(&db), ["x"], "the later delete of y wins");
        assert_eq!(
            (loaded.revision, loaded.raft_meta.as_deref()),
            (3, Some(&b"m3"[..]))
        );

        let many: Vec<_> = (0..PENDING_KEYS)
            .map(|i| put(&format!("k{i:05}")))
            .collect();
        db.write_batch(&many, 4, b"m4").expect("write");
        assert_eq!(
            names(&db).len(),
            PENDING_KEYS + 1,
            "a full pending set is written"
        );
        assert_eq!(db.load().expect("load").revision, 4);
    }
}
