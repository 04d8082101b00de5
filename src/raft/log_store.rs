//! The Raft log on redb (`raft-log.redb`): entries keyed by index, plus vote, committed and
//! last-purged ids. Appends are fsynced (`Durability::Immediate`) before openraft is told they
//! are flushed; the vote is durable before `save_vote` returns.

use std::fmt::Debug;
use std::io;
use std::ops::{Bound, RangeBounds};
use std::path::Path;
use std::sync::Arc;

use openraft::alias::{LogIdOf, VoteOf};
use openraft::entry::RaftEntry;
use openraft::storage::{IOFlushed, RaftLogStorage};
use openraft::{LogState, OptionalSend, RaftLogReader};
use redb::{Database, Durability, ReadableDatabase, ReadableTable, TableDefinition};

use super::TypeConfig;
use crate::codec;

type Entry = <TypeConfig as openraft::RaftTypeConfig>::Entry;

const LOG: TableDefinition<u64, &[u8]> = TableDefinition::new("log");
const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");

/// The log store. Clones share the database.
#[derive(Clone)]
pub struct LogStore {
    db: Arc<Database>,
    /// When the committed id was last written (it is written at most every COMMITTED_EVERY).
    committed_saved: Option<std::time::Instant>,
}

/// How stale the stored committed id may get under load: a commit each write would be a
/// database transaction each write, and a stale id only means re-committing after restart.
const COMMITTED_EVERY: std::time::Duration = std::time::Duration::from_millis(50);

fn io_err(e: impl std::fmt::Display) -> io::Error {
    io::Error::other(e.to_string())
}

impl LogStore {
    /// Opens or creates `path`.
    pub fn open(path: &Path) -> io::Result<LogStore> {
        let db = Database::builder()
            .set_cache_size(8 << 20)
            .create(path)
            .map_err(io_err)?;
        let txn = db.begin_write().map_err(io_err)?;
        txn.open_table(LOG).map_err(io_err)?;
        txn.open_table(META).map_err(io_err)?;
        txn.commit().map_err(io_err)?;
        Ok(LogStore {
            db: Arc::new(db),
            committed_saved: None,
        })
    }

    fn get_meta<T: serde::de::DeserializeOwned>(&self, key: &str) -> io::Result<Option<T>> {
        let txn = self.db.begin_read().map_err(io_err)?;
        let table = txn.open_table(META).map_err(io_err)?;
        match table.get(key).map_err(io_err)? {
            Some(v) => Ok(Some(codec::decode(v.value())?)),
            None => Ok(None),
        }
    }

    fn put_meta<T: serde::Serialize>(
        &self,
        key: &str,
        value: &T,
        durability: Durability,
    ) -> io::Result<()> {
        let bytes = codec::encode(value)?;
        let mut txn = self.db.begin_write().map_err(io_err)?;
        txn.set_durability(durability).map_err(io_err)?;
        {
            let mut table = txn.open_table(META).map_err(io_err)?;
            table.insert(key, bytes.as_slice()).map_err(io_err)?;
        }
        txn.commit().map_err(io_err)
    }

    fn last_entry_id(&self) -> io::Result<Option<LogIdOf<TypeConfig>>> {
        let txn = self.db.begin_read().map_err(io_err)?;
        let table = txn.open_table(LOG).map_err(io_err)?;
        match table.last().map_err(io_err)? {
            Some((_, v)) => {
                let entry: Entry = codec::decode(v.value())?;
                Ok(Some(entry.log_id()))
            }
            None => Ok(None),
        }
    }
}

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry>, io::Error> {
        let txn = self.db.begin_read().map_err(io_err)?;
        let table = txn.open_table(LOG).map_err(io_err)?;
        let start = match range.start_bound() {
            Bound::Included(i) => Bound::Included(*i),
            Bound::Excluded(i) => Bound::Excluded(*i),
            Bound::Unbounded => Bound::Unbounded,
        };
        let end = match range.end_bound() {
            Bound::Included(i) => Bound::Included(*i),
            Bound::Excluded(i) => Bound::Excluded(*i),
            Bound::Unbounded => Bound::Unbounded,
        };
        let mut out = Vec::new();
        for row in table.range::<u64>((start, end)).map_err(io_err)? {
            let (_, v) = row.map_err(io_err)?;
            out.push(codec::decode(v.value())?);
        }
        Ok(out)
    }

    async fn read_vote(&mut self) -> Result<Option<VoteOf<TypeConfig>>, io::Error> {
        self.get_meta("vote")
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = Self;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>, io::Error> {
        let last_purged: Option<LogIdOf<TypeConfig>> = self.get_meta("last_purged")?;
        let last = self.last_entry_id()?.or(last_purged);
        Ok(LogState {
            last_purged_log_id: last_purged,
            last_log_id: last,
        })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &VoteOf<TypeConfig>) -> Result<(), io::Error> {
        self.put_meta("vote", vote, Durability::Immediate)
    }

    async fn save_committed(
        &mut self,
        committed: Option<LogIdOf<TypeConfig>>,
    ) -> Result<(), io::Error> {
        // Not fsynced, and skipped when one was written moments ago: a lost or stale
        // committed id only means entries are re-committed after restart.
        if self
            .committed_saved
            .is_some_and(|at| at.elapsed() < COMMITTED_EVERY)
        {
            return Ok(());
        }
        self.committed_saved = Some(std::time::Instant::now());
        self.put_meta("committed", &committed, Durability::None)
    }

    async fn read_committed(&mut self) -> Result<Option<LogIdOf<TypeConfig>>, io::Error> {
        Ok(self
            .get_meta::<Option<LogIdOf<TypeConfig>>>("committed")?
            .flatten())
    }

    async fn append<I>(
        &mut self,
        entries: I,
        callback: IOFlushed<TypeConfig>,
    ) -> Result<(), io::Error>
    where
        I: IntoIterator<Item = Entry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let encoded: Vec<(u64, Vec<u8>)> = entries
            .into_iter()
            .map(|e| Ok((e.index(), codec::encode(&e)?)))
            .collect::<Result<_, codec::CodecError>>()?;
        let db = self.db.clone();
        // The commit fsyncs; run it off the async workers. Entries are readable once the
        // transaction has committed, which is before this returns.
        let result = tokio::task::spawn_blocking(move || -> io::Result<()> {
            let mut txn = db.begin_write().map_err(io_err)?;
            txn.set_durability(Durability::Immediate).map_err(io_err)?;
            {
                let mut table = txn.open_table(LOG).map_err(io_err)?;
                for (index, bytes) in &encoded {
                    table.insert(*index, bytes.as_slice()).map_err(io_err)?;
                }
            }
            txn.commit().map_err(io_err)
        })
        .await
        .map_err(io_err)?;
        match result {
            Ok(()) => {
                callback.io_completed(Ok(()));
                Ok(())
            }
            Err(e) => {
                callback.io_completed(Err(io::Error::new(e.kind(), e.to_string())));
                Err(e)
            }
        }
    }

    async fn truncate_after(
        &mut self,
        last_log_id: Option<LogIdOf<TypeConfig>>,
    ) -> Result<(), io::Error> {
        let from = last_log_id.map(|id| id.index() + 1).unwrap_or(0);
        let mut txn = self.db.begin_write().map_err(io_err)?;
        txn.set_durability(Durability::Immediate).map_err(io_err)?;
        {
            let mut table = txn.open_table(LOG).map_err(io_err)?;
            table.retain_in(from.., |_, _| false).map_err(io_err)?;
        }
        txn.commit().map_err(io_err)
    }

    async fn purge(&mut self, log_id: LogIdOf<TypeConfig>) -> Result<(), io::Error> {
        // last_purged first, then the entries: a crash in between leaves entries that are
        // already accounted as purged, never a hole.
        self.put_meta("last_purged", &log_id, Durability::Immediate)?;
        let upto = log_id.index();
        let mut txn = self.db.begin_write().map_err(io_err)?;
        txn.set_durability(Durability::None).map_err(io_err)?;
        {
            let mut table = txn.open_table(LOG).map_err(io_err)?;
            table.retain_in(..=upto, |_, _| false).map_err(io_err)?;
        }
        txn.commit().map_err(io_err)
    }
}
