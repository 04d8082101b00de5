//! openraft's state machine over [`crate::store::Store`]. Each `apply` call becomes one
//! `Store::apply_batch`, which persists the objects together with this module's metadata
//! (last applied log id and membership), so `applied_state` always matches the objects.

use std::io::{self, Cursor};
use std::path::PathBuf;
use std::sync::Arc;

use futures::{Stream, TryStreamExt};
use openraft::alias::{LogIdOf, SnapshotMetaOf, SnapshotOf, StoredMembershipOf};
use openraft::storage::{EntryResponder, RaftStateMachine};
use openraft::{EntryPayload, OptionalSend, RaftSnapshotBuilder};
use serde::{Deserialize, Serialize};

use super::TypeConfig;
use crate::codec;
use crate::store::{ApplyEntry, Store};

/// What this module stores beside the objects.
#[derive(Serialize, Deserialize, Default)]
struct RaftMeta {
    last_applied: Option<LogIdOf<TypeConfig>>,
    membership: StoredMembershipOf<TypeConfig>,
}

/// A snapshot file: its meta and the store's snapshot bytes.
#[derive(Serialize, Deserialize)]
struct SnapshotFile {
    meta: SnapshotMetaOf<TypeConfig>,
    data: Vec<u8>,
}

/// The state machine. Clones share the store.
#[derive(Clone)]
pub struct StateMachine {
    store: Arc<Store>,
    snapshot_path: PathBuf,
}

impl StateMachine {
    pub fn new(store: Arc<Store>, snapshot_path: PathBuf) -> Self {
        StateMachine {
            store,
            snapshot_path,
        }
    }

    fn meta(&self) -> io::Result<RaftMeta> {
        match self.store.raft_meta() {
            Some(bytes) if !bytes.is_empty() => Ok(codec::decode(&bytes)?),
            _ => Ok(RaftMeta::default()),
        }
    }

    fn read_snapshot_file(&self) -> io::Result<Option<SnapshotFile>> {
        match std::fs::read(&self.snapshot_path) {
            Ok(bytes) => Ok(Some(codec::decode(&bytes)?)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    fn write_snapshot_file(&self, file: &SnapshotFile) -> io::Result<()> {
        use std::io::Write;
        let bytes = codec::encode(file)?;
        let tmp = self.snapshot_path.with_extension("tmp");
        {
            let mut f = std::fs::File::create(&tmp)?;
            f.write_all(&bytes)?;
            f.sync_all()?;
        }
        std::fs::rename(&tmp, &self.snapshot_path)?;
        if let Some(dir) = self.snapshot_path.parent() {
            std::fs::File::open(dir)?.sync_all()?;
        }
        Ok(())
    }
}

impl RaftSnapshotBuilder<TypeConfig> for StateMachine {
    type SnapshotData = Cursor<Vec<u8>>;

    async fn build_snapshot(
        &mut self,
    ) -> Result<SnapshotOf<TypeConfig, Self::SnapshotData>, io::Error> {
        // Everything applied must be durable before the log behind it may be purged.
        self.store.sync()?;
        let (raft_meta, data) = self.store.snapshot()?;
        let meta: RaftMeta = match raft_meta {
            Some(b) if !b.is_empty() => codec::decode(&b)?,
            _ => RaftMeta::default(),
        };
        let snap_meta = SnapshotMetaOf::<TypeConfig> {
            last_log_id: meta.last_applied,
            last_membership: meta.membership,
        };
        let file = SnapshotFile {
            meta: snap_meta.clone(),
            data,
        };
        let this = self.clone();
        let file =
            tokio::task::spawn_blocking(move || this.write_snapshot_file(&file).map(|_| file))
                .await
                .map_err(io::Error::other)??;
        Ok(SnapshotOf::<TypeConfig, Self::SnapshotData> {
            meta: snap_meta,
            snapshot: Cursor::new(file.data),
        })
    }
}

impl RaftStateMachine<TypeConfig> for StateMachine {
    type SnapshotData = Cursor<Vec<u8>>;
    type SnapshotBuilder = Self;

    async fn applied_state(
        &mut self,
    ) -> Result<(Option<LogIdOf<TypeConfig>>, StoredMembershipOf<TypeConfig>), io::Error> {
        let meta = self.meta()?;
        Ok((meta.last_applied, meta.membership))
    }

    async fn apply<Strm>(&mut self, mut entries: Strm) -> Result<(), io::Error>
    where
        Strm: Stream<Item = Result<EntryResponder<TypeConfig>, io::Error>> + Unpin + OptionalSend,
    {
        let mut meta = self.meta()?;
        let mut batch = Vec::new();
        let mut responders = Vec::new();
        while let Some((entry, responder)) = entries.try_next().await? {
            let index = entry.log_id.index();
            meta.last_applied = Some(entry.log_id);
            let command = match entry.payload {
                EntryPayload::Blank => None,
                EntryPayload::Normal(cmd) => Some(cmd),
                EntryPayload::Membership(m) => {
                    meta.membership = StoredMembershipOf::<TypeConfig>::new(Some(entry.log_id), m);
                    None
                }
            };
            batch.push(ApplyEntry { index, command });
            responders.push(responder);
        }
        if batch.is_empty() {
            return Ok(());
        }
        let meta_bytes = codec::encode(&meta)?;
        let results = self.store.apply_batch(batch, meta_bytes)?;
        for (responder, result) in responders.into_iter().zip(results) {
            if let Some(r) = responder {
                r.send(result);
            }
        }
        Ok(())
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        self.clone()
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMetaOf<TypeConfig>,
        snapshot: Self::SnapshotData,
    ) -> Result<(), io::Error> {
        let data = snapshot.into_inner();
        let raft_meta = RaftMeta {
            last_applied: meta.last_log_id,
            membership: meta.last_membership.clone(),
        };
        self.store
            .install_snapshot(&data, codec::encode(&raft_meta)?)?;
        self.write_snapshot_file(&SnapshotFile {
            meta: meta.clone(),
            data,
        })
    }

    async fn get_current_snapshot(
        &mut self,
    ) -> Result<Option<SnapshotOf<TypeConfig, Self::SnapshotData>>, io::Error> {
        Ok(self
            .read_snapshot_file()?
            .map(|f| SnapshotOf::<TypeConfig, Self::SnapshotData> {
                meta: f.meta,
                snapshot: Cursor::new(f.data),
            }))
    }
}
