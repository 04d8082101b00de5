//! The Raft log on redb (`raft-log.redb`): entries keyed by index, plus vote, committed and
//! last-purged ids. The vote is durable before `save_vote` returns.
//!
//! Appends do not block the Raft core (openraft's contract for `append`): the entries are
//! kept in memory, readable at once, and a writer thread commits them in order, fsynced
//! (`Durability::Immediate`), before openraft is told they are flushed; appends queued while
//! it commits go into its next transaction. Truncation and purging first wait for the writer
//! to finish what was queued before them, so the file never holds an entry they removed.

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::io;
use std::ops::{Bound, RangeBounds};
use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};

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

/// Appends waiting for the writer thread, at most (each holds one `append` call's entries).
const WRITES_QUEUED: usize = 1024;

/// The log store. Clones share the database and the writer.
#[derive(Clone)]
pub struct LogStore {
    db: Arc<Database>,
    /// Entries handed to the writer and not yet committed, by index.
    unwritten: Arc<Mutex<BTreeMap<u64, Entry>>>,
    writer: tokio::sync::mpsc::Sender<Job>,
    /// When the committed id was last written (it is written at most every COMMITTED_EVERY).
    committed_saved: Option<std::time::Instant>,
}

/// Work for the writer thread, done in the order sent.
enum Job {
    /// Commit these encoded entries, then report to openraft.
    Append {
        entries: Vec<(LogIdOf<TypeConfig>, Vec<u8>)>,
        callback: IOFlushed<TypeConfig>,
    },
    /// Answer once everything sent before is committed (or failed).
    Barrier(tokio::sync::oneshot::Sender<()>),
}

/// How stale the stored committed id may get under load: a commit each write would be a
/// database transaction each write, and a stale id only means re-committing after restart.
const COMMITTED_EVERY: std::time::Duration = std::time::Duration::from_millis(50);

fn io_err(e: impl std::fmt::Display) -> io::Error {
    io::Error::other(e.to_string())
}

impl LogStore {
    /// Opens or creates `path` and starts its writer thread (which ends once every clone of
    /// the store is dropped).
    pub fn open(path: &Path) -> io::Result<LogStore> {
        let db = Database::builder()
            .set_cache_size(8 << 20)
            .create(path)
            .map_err(io_err)?;
        let txn = db.begin_write().map_err(io_err)?;
        txn.open_table(LOG).map_err(io_err)?;
        txn.open_table(META).map_err(io_err)?;
        txn.commit().map_err(io_err)?;
        let db = Arc::new(db);
        let unwritten = Arc::new(Mutex::new(BTreeMap::new()));
        let (writer, jobs) = tokio::sync::mpsc::channel(WRITES_QUEUED);
        let (wdb, wunwritten) = (db.clone(), unwritten.clone());
        std::thread::Builder::new()
            .name("vkube-raft-log".into())
            .spawn(move || write_jobs(&wdb, &wunwritten, jobs))?;
        Ok(LogStore {
            db,
            unwritten,
            writer,
            committed_saved: None,
        })
    }

    fn unwritten(&self) -> std::sync::MutexGuard<'_, BTreeMap<u64, Entry>> {
        self.unwritten
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Waits until the writer has committed everything queued before this call.
    async fn written(&self) -> io::Result<()> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.writer
            .send(Job::Barrier(tx))
            .await
            .map_err(|_| io_err("the raft log writer stopped"))?;
        rx.await.map_err(|_| io_err("the raft log writer stopped"))
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

    /// The id of the last entry, written or not.
    fn last_entry_id(&self) -> io::Result<Option<LogIdOf<TypeConfig>>> {
        if let Some((_, e)) = self.unwritten().last_key_value() {
            return Ok(Some(e.log_id()));
        }
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

/// The writer thread: commits queued appends in order, as many at once as are queued, and
/// reports each to openraft once its transaction is durable.
fn write_jobs(
    db: &Database,
    unwritten: &Mutex<BTreeMap<u64, Entry>>,
    mut jobs: tokio::sync::mpsc::Receiver<Job>,
) {
    while let Some(first) = jobs.blocking_recv() {
        let mut batch = vec![first];
        while let Ok(more) = jobs.try_recv() {
            batch.push(more);
        }
        let appended: Vec<&(LogIdOf<TypeConfig>, Vec<u8>)> = batch
            .iter()
            .flat_map(|job| match job {
                Job::Append { entries, .. } => entries.iter(),
                Job::Barrier(_) => [].iter(),
            })
            .collect();
        let result = if appended.is_empty() {
            Ok(())
        } else {
            commit_entries(db, &appended)
        };
        if let Err(e) = &result {
            tracing::error!(error = %e, "raft log append failed");
        }
        {
            // Written (or failed): readers find them in the file from now on. A slot that
            // holds another entry now (truncated and appended again) is left for its own job.
            let mut held = unwritten.lock().unwrap_or_else(PoisonError::into_inner);
            for (id, _) in &appended {
                if held.get(&id.index()).is_some_and(|e| e.log_id() == *id) {
                    held.remove(&id.index());
                }
            }
        }
        for job in batch {
            match job {
                Job::Append { callback, .. } => callback.io_completed(
                    result
                        .as_ref()
                        .map(|_| ())
                        .map_err(|e| io::Error::new(e.kind(), e.to_string())),
                ),
                Job::Barrier(done) => {
                    let _ = done.send(());
                }
            }
        }
    }
}

fn commit_entries(db: &Database, entries: &[&(LogIdOf<TypeConfig>, Vec<u8>)]) -> io::Result<()> {
    let mut txn = db.begin_write().map_err(io_err)?;
    txn.set_durability(Durability::Immediate).map_err(io_err)?;
    {
        let mut table = txn.open_table(LOG).map_err(io_err)?;
        for (id, bytes) in entries {
            table.insert(id.index(), bytes.as_slice()).map_err(io_err)?;
        }
    }
    txn.commit().map_err(io_err)
}

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry>, io::Error> {
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
        // Entries not yet written are taken from memory, the rest read from the file. The
        // memory is looked at first: what leaves it is in the file by then.
        let held: BTreeMap<u64, Entry> = self
            .unwritten()
            .range((start, end))
            .map(|(i, e)| (*i, e.clone()))
            .collect();
        let file_end = match held.first_key_value() {
            Some((first, _)) => Bound::Excluded(*first),
            None => end,
        };
        let mut out = Vec::new();
        if range_is_empty(start, file_end) {
            out.extend(held.into_values());
            return Ok(out);
        }
        let txn = self.db.begin_read().map_err(io_err)?;
        let table = txn.open_table(LOG).map_err(io_err)?;
        for row in table.range::<u64>((start, file_end)).map_err(io_err)? {
            let (_, v) = row.map_err(io_err)?;
            out.push(codec::decode(v.value())?);
        }
        out.extend(held.into_values());
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
        let entries: Vec<Entry> = entries.into_iter().collect();
        let encoded: Vec<(LogIdOf<TypeConfig>, Vec<u8>)> = entries
            .iter()
            .map(|e| Ok((e.log_id(), codec::encode(e)?)))
            .collect::<Result<_, codec::CodecError>>()?;
        {
            let mut held = self.unwritten();
            for e in entries {
                held.insert(e.index(), e);
            }
        }
        let job = Job::Append {
            entries: encoded,
            callback,
        };
        self.writer
            .send(job)
            .await
            .map_err(|_| io_err("the raft log writer stopped"))
    }

    async fn truncate_after(
        &mut self,
        last_log_id: Option<LogIdOf<TypeConfig>>,
    ) -> Result<(), io::Error> {
        let from = last_log_id.map(|id| id.index() + 1).unwrap_or(0);
        // From the end backward (never a hole): memory first, then the file once what was
        // queued before is written.
        self.unwritten().split_off(&from);
        self.written().await?;
        let mut txn = self.db.begin_write().map_err(io_err)?;
        txn.set_durability(Durability::Immediate).map_err(io_err)?;
        {
            let mut table = txn.open_table(LOG).map_err(io_err)?;
            table.retain_in(from.., |_, _| false).map_err(io_err)?;
        }
        txn.commit().map_err(io_err)
    }

    async fn purge(&mut self, log_id: LogIdOf<TypeConfig>) -> Result<(), io::Error> {
        // Purged entries were applied, so written; what was queued before is waited for all
        // the same, so the file never gets back an entry purged from it.
        self.written().await?;
        self.unwritten().retain(|i, _| *i > log_id.index());
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

/// Whether no index lies between `start` and `end`.
fn range_is_empty(start: Bound<u64>, end: Bound<u64>) -> bool {
    let first = match start {
        Bound::Included(i) => i,
        Bound::Excluded(i) => match i.checked_add(1) {
            Some(i) => i,
            None => return true,
        },
        Bound::Unbounded => 0,
    };
    match end {
        Bound::Included(i) => i < first,
        Bound::Excluded(i) => i <= first,
        Bound::Unbounded => false,
    }
}
