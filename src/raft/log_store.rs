//! The Raft log in plain files under `raft-log/`: the entries in append-only segment files
//! (`<first index>.log`, records framed by [`super::log_file`]), and the vote, the last purged
//! id and the committed id each in a small file of its own.
//!
//! Appends do not block the Raft core (openraft's contract for `append`): the entries are
//! kept in memory, readable at once, and a writer thread writes them in order and fsyncs
//! (`fdatasync`) before openraft is told they are flushed; appends queued while it writes go
//! into its next write. The newest written entries stay in memory too, so applying them
//! reads nothing back. Truncation and purging first wait for the writer to finish what was
//! queued before them, so a file never gets back an entry they removed.
//!
//! Crash safety: a segment is created, and its directory fsynced, before entries go into it;
//! a crash in the middle of a write leaves a torn last record, which opening finds by its
//! checksum and cuts off (that entry was never reported flushed). The vote and the last
//! purged id are replaced atomically (written beside, fsynced, renamed, directory fsynced).
//! Truncation cuts from the end backward and purging removes from the front, so the log
//! never has a hole, whatever point a crash stops them at.
//!
//! A data dir written by a build that kept the log in redb (`raft-log.redb`) is converted on
//! first open: the entries and metadata are copied into a new directory that is renamed into
//! place once complete, and only then is the redb file removed.

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::fs::File;
use std::io;
use std::ops::{Bound, RangeBounds};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use openraft::alias::{LogIdOf, VoteOf};
use openraft::entry::RaftEntry;
use openraft::storage::{IOFlushed, RaftLogStorage};
use openraft::{LogState, OptionalSend, RaftLogReader};

use super::TypeConfig;
use super::log_file::{self, HEADER, Record};
use crate::codec;

type Entry = <TypeConfig as openraft::RaftTypeConfig>::Entry;
type LogId = LogIdOf<TypeConfig>;

/// Appends waiting for the writer thread, at most (each holds one `append` call's entries).
const WRITES_QUEUED: usize = 1024;

/// A segment takes no more appends once it is this large; the next goes into a new one.
/// (Small under test, so that the conformance suite's logs span several segments.)
#[cfg(not(test))]
const SEGMENT_BYTES: u64 = 64 << 20;
#[cfg(test)]
const SEGMENT_BYTES: u64 = 300;

/// Written entries kept in memory for reading, at most (by count and by encoded size).
const CACHED_ENTRIES: usize = 512;
const CACHED_BYTES: usize = 16 << 20;

/// How stale the stored committed id may get under load: writing it on every commit would
/// be a file write each time, and a stale id only means re-applying entries after restart.
const COMMITTED_EVERY: std::time::Duration = std::time::Duration::from_millis(50);

/// The metadata files.
const VOTE: &str = "vote";
const PURGED: &str = "last-purged";
const COMMITTED: &str = "committed";

/// The log store. Clones share the files, the memory and the writer.
#[derive(Clone)]
pub struct LogStore {
    shared: Arc<Shared>,
    writer: tokio::sync::mpsc::Sender<Job>,
    /// When the committed id was last written (it is written at most every COMMITTED_EVERY).
    committed_saved: Option<std::time::Instant>,
}

struct Shared {
    dir: PathBuf,
    /// The tail of the log: entries not yet written, and the newest written ones.
    cache: Mutex<Cache>,
    segments: Mutex<Segments>,
}

/// A contiguous tail of the log, by index.
#[derive(Default)]
struct Cache {
    entries: BTreeMap<u64, Cached>,
    /// The encoded size of the written entries held.
    written_bytes: usize,
    /// How many of the held entries are written (they are the lowest indexes).
    written: usize,
}

struct Cached {
    entry: Entry,
    size: usize,
    written: bool,
}

/// The segment files and what is in them.
#[derive(Default)]
struct Segments {
    /// By first index. Indexes run on without a gap from each segment into the next; only
    /// the last segment may be empty.
    files: BTreeMap<u64, Segment>,
    /// The id of the last entry in the files, if any.
    last: Option<LogId>,
    /// The id up to which the log is purged.
    purged: Option<LogId>,
}

struct Segment {
    path: PathBuf,
    file: Arc<File>,
    /// One per entry, in index order, starting at the segment's first index.
    records: Vec<Record>,
    /// The bytes in use (the end of the last record).
    len: u64,
}

/// Work for the writer thread, done in the order sent.
enum Job {
    /// Write these encoded entries, then report to openraft.
    Append {
        entries: Vec<(LogId, Vec<u8>)>,
        callback: IOFlushed<TypeConfig>,
    },
    /// Answer once everything sent before is written (or failed).
    Barrier(tokio::sync::oneshot::Sender<()>),
}

fn invalid(message: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, message)
}

/// Adds the path to an I/O error's message.
fn at(path: &Path) -> impl FnOnce(io::Error) -> io::Error + '_ {
    move |e| io::Error::new(e.kind(), format!("{}: {e}", path.display()))
}

fn writer_stopped() -> io::Error {
    io::Error::other("the raft log writer stopped")
}

/// Removes a segment (or any) file.
fn remove_file(path: &Path) -> io::Result<()> {
    std::fs::remove_file(path).map_err(at(path))
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir).and_then(|d| d.sync_all()).map_err(at(dir))
}

/// Replaces file `name` in `dir` with `bytes`: atomically and durably when `durable`, else
/// atomically as far as the file system keeps a rename after its data.
fn write_meta(dir: &Path, name: &str, bytes: &[u8], durable: bool) -> io::Result<()> {
    let path = dir.join(name);
    let tmp = dir.join(format!("{name}.tmp"));
    let mut file = File::create(&tmp).map_err(at(&tmp))?;
    io::Write::write_all(&mut file, bytes).map_err(at(&tmp))?;
    if durable {
        file.sync_all().map_err(at(&tmp))?;
    }
    std::fs::rename(&tmp, &path).map_err(at(&path))?;
    if durable {
        sync_dir(dir)?;
    }
    Ok(())
}

fn read_meta<T: serde::de::DeserializeOwned>(dir: &Path, name: &str) -> io::Result<Option<T>> {
    let path = dir.join(name);
    match std::fs::read(&path) {
        Ok(bytes) => codec::decode(&bytes)
            .map(Some)
            .map_err(|e| invalid(format!("{}: {e}", path.display()))),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(at(&path)(e)),
    }
}

fn segment_path(dir: &Path, first: u64) -> PathBuf {
    dir.join(format!("{first:020}.log"))
}

/// The half-open index range `[lo, hi)` that `start`/`end` describe.
fn half_open(start: Bound<&u64>, end: Bound<&u64>) -> (u64, u64) {
    let lo = match start {
        Bound::Included(i) => *i,
        Bound::Excluded(i) => i.saturating_add(1),
        Bound::Unbounded => 0,
    };
    let hi = match end {
        Bound::Included(i) => i.saturating_add(1),
        Bound::Excluded(i) => *i,
        Bound::Unbounded => u64::MAX,
    };
    (lo, hi)
}

impl Segments {
    /// Reads the segments in `dir`: cuts a torn tail off the last one, drops those that
    /// hold nothing or only purged entries, and checks that the indexes run on.
    fn load(dir: &Path, purged: Option<LogId>) -> io::Result<Segments> {
        let mut found = Vec::new();
        for item in std::fs::read_dir(dir).map_err(at(dir))? {
            let path = item.map_err(at(dir))?.path();
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
            if let Some(first) = name
                .strip_suffix(".log")
                .and_then(|n| n.parse::<u64>().ok())
            {
                found.push((first, path));
            }
        }
        found.sort();
        let purged_upto = purged.as_ref().map(|id| id.index());
        let mut segments = Segments {
            purged,
            ..Segments::default()
        };
        let count = found.len();
        let mut last_bytes = None;
        for (n, (first, path)) in found.into_iter().enumerate() {
            let bytes = std::fs::read(&path).map_err(at(&path))?;
            let scan = log_file::scan(&bytes);
            let file = File::options()
                .read(true)
                .write(true)
                .open(&path)
                .map_err(at(&path))?;
            if scan.whole < bytes.len() as u64 {
                if n + 1 < count {
                    return Err(invalid(format!(
                        "{}: damaged record at byte {} of a segment that is not the last",
                        path.display(),
                        scan.whole
                    )));
                }
                tracing::warn!(
                    path = %path.display(),
                    at = scan.whole,
                    "raft log ends in a torn write (a crash during an append); cutting it off"
                );
                file.set_len(scan.whole).map_err(at(&path))?;
                file.sync_all().map_err(at(&path))?;
            }
            for (k, record) in scan.records.iter().enumerate() {
                if record.index != first + k as u64 {
                    return Err(invalid(format!(
                        "{}: entry {} where entry {} belongs",
                        path.display(),
                        record.index,
                        first + k as u64
                    )));
                }
            }
            let next = first + scan.records.len() as u64;
            if scan.records.is_empty() || purged_upto.is_some_and(|p| next <= p + 1) {
                remove_file(&path)?;
                continue;
            }
            if let Some((prev_first, prev)) = segments.files.last_key_value() {
                let expected = prev_first + prev.records.len() as u64;
                if first != expected {
                    return Err(invalid(format!(
                        "{}: the log jumps from entry {} to entry {first}",
                        path.display(),
                        expected - 1
                    )));
                }
            }
            last_bytes = Some(bytes);
            segments.files.insert(
                first,
                Segment {
                    path,
                    file: Arc::new(file),
                    len: scan.whole,
                    records: scan.records,
                },
            );
        }
        if let (Some(bytes), Some(segment)) = (last_bytes, segments.files.values().last()) {
            let record = segment
                .records
                .last()
                .expect("loaded segments are not empty");
            let entry: Entry =
                codec::decode(&bytes[record.offset as usize..record.end() as usize])?;
            segments.last = Some(entry.log_id());
        }
        sync_dir(dir)?;
        Ok(segments)
    }

    /// Whether any entry is in the files.
    fn holds_entries(&self) -> bool {
        self.files.values().any(|s| !s.records.is_empty())
    }

    /// The segment that entry `index` goes into: the last one, or a new one when there is
    /// none, it is full, or it is empty and starts elsewhere.
    fn for_append(&mut self, dir: &Path, index: u64) -> io::Result<&mut Segment> {
        let fits = match self.files.last_key_value() {
            Some((first, s)) if s.records.is_empty() => *first == index,
            Some((first, s)) => {
                let next = first + s.records.len() as u64;
                if next != index {
                    return Err(invalid(format!(
                        "raft log append of entry {index} does not follow entry {}",
                        next - 1
                    )));
                }
                s.len < SEGMENT_BYTES
            }
            None => false,
        };
        if !fits {
            if let Some(last) = self.files.last_entry()
                && last.get().records.is_empty()
            {
                let path = last.get().path.clone();
                last.remove();
                remove_file(&path)?;
            }
            let path = segment_path(dir, index);
            let file = File::options()
                .read(true)
                .write(true)
                .create(true)
                .truncate(true)
                .open(&path)
                .map_err(at(&path))?;
            sync_dir(dir)?;
            self.files.insert(
                index,
                Segment {
                    path,
                    file: Arc::new(file),
                    records: Vec::new(),
                    len: 0,
                },
            );
        }
        Ok(self
            .files
            .values_mut()
            .last()
            .expect("a segment was found or created"))
    }

    /// Where the entries in `[lo, hi)` are: per segment, its file and their records. Purged
    /// entries still in a segment are not among them.
    fn locate(&self, lo: u64, hi: u64) -> Vec<(Arc<File>, Vec<Record>)> {
        let lo = match &self.purged {
            Some(id) => lo.max(id.index() + 1),
            None => lo,
        };
        let mut out = Vec::new();
        for (first, segment) in &self.files {
            let end = first + segment.records.len() as u64;
            if hi <= *first || end <= lo || hi <= lo {
                continue;
            }
            let from = (lo.max(*first) - first) as usize;
            let to = (hi.min(end) - first) as usize;
            out.push((segment.file.clone(), segment.records[from..to].to_vec()));
        }
        out
    }
}

/// Reads and decodes the entries of `records`, which lie one after another in `file`.
fn read_records(file: &File, records: &[Record]) -> io::Result<Vec<Entry>> {
    let (Some(first), Some(last)) = (records.first(), records.last()) else {
        return Ok(Vec::new());
    };
    let mut bytes = vec![0u8; (last.end() - first.offset) as usize];
    file.read_exact_at(&mut bytes, first.offset)?;
    records
        .iter()
        .map(|r| {
            let from = (r.offset - first.offset) as usize;
            Ok(codec::decode(&bytes[from..from + r.length as usize])?)
        })
        .collect()
}

impl LogStore {
    /// Opens or creates the log in directory `dir` (converting `<dir>.redb` if that is where
    /// an older build kept it) and starts its writer thread, which ends once every clone of
    /// the store is dropped.
    pub fn open(dir: &Path) -> io::Result<LogStore> {
        let old = dir.with_extension("redb");
        if !dir.exists() {
            if old.exists() {
                migrate_from_redb(&old, dir)?;
            } else {
                std::fs::create_dir_all(dir).map_err(at(dir))?;
                if let Some(parent) = dir.parent() {
                    sync_dir(parent)?;
                }
            }
        } else if old.exists() {
            // Converted, and stopped before the old file was removed.
            remove_file(&old)?;
        }
        let purged: Option<LogId> = read_meta(dir, PURGED)?;
        let shared = Arc::new(Shared {
            dir: dir.to_path_buf(),
            cache: Mutex::default(),
            segments: Mutex::new(Segments::load(dir, purged)?),
        });
        let (writer, jobs) = tokio::sync::mpsc::channel(WRITES_QUEUED);
        let wshared = shared.clone();
        std::thread::Builder::new()
            .name("vkube-raft-log".into())
            .spawn(move || write_jobs(&wshared, jobs))?;
        Ok(LogStore {
            shared,
            writer,
            committed_saved: None,
        })
    }

    /// Waits until the writer has written everything queued before this call.
    async fn written(&self) -> io::Result<()> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.writer
            .send(Job::Barrier(tx))
            .await
            .map_err(|_| writer_stopped())?;
        rx.await.map_err(|_| writer_stopped())
    }
}

/// The writer thread: writes queued appends in order, as many at once as are queued, and
/// reports each to openraft once it is durable.
fn write_jobs(shared: &Shared, mut jobs: tokio::sync::mpsc::Receiver<Job>) {
    while let Some(first) = jobs.blocking_recv() {
        let mut batch = vec![first];
        while let Ok(more) = jobs.try_recv() {
            batch.push(more);
        }
        let appended: Vec<&(LogId, Vec<u8>)> = batch
            .iter()
            .flat_map(|job| match job {
                Job::Append { entries, .. } => entries.iter(),
                Job::Barrier(_) => [].iter(),
            })
            .collect();
        let result = if appended.is_empty() {
            Ok(())
        } else {
            write_entries(shared, &appended)
        };
        if let Err(e) = &result {
            tracing::error!(error = %e, "raft log append failed");
        }
        mark_written(&mut lock(&shared.cache), &appended);
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

/// Frames `entries` onto the end of the last segment in one write and fsyncs it.
fn write_entries(shared: &Shared, entries: &[&(LogId, Vec<u8>)]) -> io::Result<()> {
    let (first_id, last_id) = match (entries.first(), entries.last()) {
        (Some((first, _)), Some((last, _))) => (first.index(), *last),
        _ => return Ok(()),
    };
    let (file, path, base) = {
        let mut segments = lock(&shared.segments);
        let segment = segments.for_append(&shared.dir, first_id)?;
        (segment.file.clone(), segment.path.clone(), segment.len)
    };
    let size: usize = entries.iter().map(|(_, b)| HEADER + b.len()).sum();
    let mut bytes = Vec::with_capacity(size);
    let mut records = Vec::with_capacity(entries.len());
    for (n, (id, entry)) in entries.iter().enumerate() {
        if id.index() != first_id + n as u64 {
            return Err(invalid(format!(
                "raft log append of entry {} does not follow entry {}",
                id.index(),
                first_id + n as u64 - 1
            )));
        }
        log_file::frame(id.index(), entry, &mut bytes);
        records.push(Record {
            index: id.index(),
            offset: base + (bytes.len() - entry.len()) as u64,
            length: entry.len() as u32,
        });
    }
    if let Err(e) = file
        .write_all_at(&bytes, base)
        .and_then(|_| file.sync_data())
    {
        // Best effort: leave no part of the failed write after the last whole record, where
        // a later segment would make it a damaged record that refuses the start.
        let _ = file.set_len(base);
        return Err(at(&path)(e));
    }
    let mut segments = lock(&shared.segments);
    let segment = segments
        .files
        .values_mut()
        .last()
        .expect("truncation and purging wait for the writer, so its segment is still there");
    segment.records.extend(records);
    segment.len = base + bytes.len() as u64;
    segments.last = Some(last_id);
    Ok(())
}

/// Marks the cached copies of `appended` written (or failed: readers then find what the
/// file holds) and drops the oldest written entries beyond the cache's bounds.
fn mark_written(cache: &mut Cache, appended: &[&(LogId, Vec<u8>)]) {
    for (id, _) in appended {
        // A slot that holds another entry now (truncated and appended again) is left for
        // its own job.
        if let Some(cached) = cache.entries.get_mut(&id.index())
            && cached.entry.log_id() == *id
            && !cached.written
        {
            cached.written = true;
            cache.written += 1;
            cache.written_bytes += cached.size;
        }
    }
    while cache.written > CACHED_ENTRIES || cache.written_bytes > CACHED_BYTES {
        match cache.entries.first_entry() {
            Some(oldest) if oldest.get().written => {
                let gone = oldest.remove();
                cache.written -= 1;
                cache.written_bytes -= gone.size;
            }
            _ => break,
        }
    }
}

impl Cache {
    /// Drops the entries for which `keep` is false.
    fn retain(&mut self, keep: impl Fn(u64) -> bool) {
        let (written, written_bytes) = (&mut self.written, &mut self.written_bytes);
        self.entries.retain(|index, cached| {
            let kept = keep(*index);
            if !kept && cached.written {
                *written -= 1;
                *written_bytes -= cached.size;
            }
            kept
        });
    }
}

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry>, io::Error> {
        let (lo, hi) = half_open(range.start_bound(), range.end_bound());
        if lo >= hi {
            return Ok(Vec::new());
        }
        // The memory is looked at first: what leaves it is in the files by then.
        let held: Vec<(u64, Entry)> = lock(&self.shared.cache)
            .entries
            .range(lo..hi)
            .map(|(i, c)| (*i, c.entry.clone()))
            .collect();
        let files_hi = held.first().map_or(hi, |(first, _)| *first);
        let mut out = Vec::new();
        if lo < files_hi {
            let spans = lock(&self.shared.segments).locate(lo, files_hi);
            for (file, records) in spans {
                out.extend(read_records(&file, &records)?);
            }
        }
        out.extend(held.into_iter().map(|(_, e)| e));
        Ok(out)
    }

    async fn read_vote(&mut self) -> Result<Option<VoteOf<TypeConfig>>, io::Error> {
        read_meta(&self.shared.dir, VOTE)
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = Self;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>, io::Error> {
        let cached = lock(&self.shared.cache)
            .entries
            .last_key_value()
            .map(|(_, c)| c.entry.log_id());
        let segments = lock(&self.shared.segments);
        let last_purged = segments.purged;
        Ok(LogState {
            last_log_id: cached.or(segments.last).or(last_purged),
            last_purged_log_id: last_purged,
        })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &VoteOf<TypeConfig>) -> Result<(), io::Error> {
        write_meta(&self.shared.dir, VOTE, &codec::encode(vote)?, true)
    }

    async fn save_committed(&mut self, committed: Option<LogId>) -> Result<(), io::Error> {
        // Not fsynced, and skipped when one was written moments ago: a lost or stale
        // committed id only means entries are re-applied after restart.
        if self
            .committed_saved
            .is_some_and(|at| at.elapsed() < COMMITTED_EVERY)
        {
            return Ok(());
        }
        self.committed_saved = Some(std::time::Instant::now());
        write_meta(
            &self.shared.dir,
            COMMITTED,
            &codec::encode(&committed)?,
            false,
        )
    }

    async fn read_committed(&mut self) -> Result<Option<LogId>, io::Error> {
        // Written without fsync: a crash may leave it empty, which only means none.
        match read_meta::<Option<LogId>>(&self.shared.dir, COMMITTED) {
            Ok(committed) => Ok(committed.flatten()),
            Err(e) if e.kind() == io::ErrorKind::InvalidData => {
                tracing::warn!(error = %e, "ignoring an unreadable committed id");
                Ok(None)
            }
            Err(e) => Err(e),
        }
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
        let encoded: Vec<(LogId, Vec<u8>)> = entries
            .iter()
            .map(|e| Ok((e.log_id(), codec::encode(e)?)))
            .collect::<Result<_, codec::CodecError>>()?;
        {
            let mut cache = lock(&self.shared.cache);
            for (entry, (_, bytes)) in entries.into_iter().zip(&encoded) {
                let index = entry.index();
                let cached = Cached {
                    entry,
                    size: bytes.len(),
                    written: false,
                };
                if let Some(old) = cache.entries.insert(index, cached)
                    && old.written
                {
                    cache.written -= 1;
                    cache.written_bytes -= old.size;
                }
            }
        }
        let job = Job::Append {
            entries: encoded,
            callback,
        };
        self.writer.send(job).await.map_err(|_| writer_stopped())
    }

    async fn truncate_after(&mut self, last_log_id: Option<LogId>) -> Result<(), io::Error> {
        let from = last_log_id.as_ref().map_or(0, |id| id.index() + 1);
        // From the end backward (never a hole): memory first, then the files once what was
        // queued before is written.
        lock(&self.shared.cache).retain(|index| index < from);
        self.written().await?;
        let dir = &self.shared.dir;
        let mut segments = lock(&self.shared.segments);
        let mut removed = false;
        while let Some(last) = segments.files.last_entry() {
            if *last.key() < from {
                break;
            }
            let segment = last.remove();
            remove_file(&segment.path)?;
            removed = true;
        }
        if let Some(mut last) = segments.files.last_entry() {
            let keep = (from - *last.key()) as usize;
            let segment = last.get_mut();
            if let Some(cut) = segment.records.get(keep).map(|r| r.offset - HEADER as u64) {
                segment.file.set_len(cut).map_err(at(&segment.path))?;
                segment.file.sync_data().map_err(at(&segment.path))?;
                segment.records.truncate(keep);
                segment.len = cut;
            }
        }
        if removed {
            sync_dir(dir)?;
        }
        segments.last = last_log_id.filter(|_| segments.holds_entries());
        Ok(())
    }

    async fn purge(&mut self, log_id: LogId) -> Result<(), io::Error> {
        // Purged entries were applied, so written; what was queued before is waited for all
        // the same, so a file never gets back an entry purged from it.
        self.written().await?;
        let upto = log_id.index();
        lock(&self.shared.cache).retain(|index| index > upto);
        // The id first, then the entries: a crash in between leaves entries that are
        // already accounted as purged, never a hole.
        let dir = &self.shared.dir;
        write_meta(dir, PURGED, &codec::encode(&log_id)?, true)?;
        let mut segments = lock(&self.shared.segments);
        segments.purged = Some(log_id);
        let mut removed = false;
        while let Some(first) = segments.files.first_entry() {
            if first.key() + first.get().records.len() as u64 > upto + 1 {
                break;
            }
            let segment = first.remove();
            remove_file(&segment.path)?;
            removed = true;
        }
        if removed {
            sync_dir(dir)?;
        }
        if !segments.holds_entries() {
            segments.last = None;
        }
        Ok(())
    }
}

/// Copies the log of an older build from redb file `old` into directory `dir`: into a
/// sibling directory first, renamed to `dir` once complete and durable; then removes `old`.
fn migrate_from_redb(old: &Path, dir: &Path) -> io::Result<()> {
    use redb::{ReadableDatabase, ReadableTable, TableDefinition};
    const OLD_LOG: TableDefinition<u64, &[u8]> = TableDefinition::new("log");
    const OLD_META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");
    let redb_err = |e: &dyn std::fmt::Display| io::Error::other(format!("{}: {e}", old.display()));
    tracing::info!(from = %old.display(), to = %dir.display(), "converting the raft log");
    let db = redb::Database::open(old).map_err(|e| redb_err(&e))?;
    let txn = db.begin_read().map_err(|e| redb_err(&e))?;
    let tmp = dir.with_extension("converting");
    if tmp.exists() {
        std::fs::remove_dir_all(&tmp).map_err(at(&tmp))?;
    }
    std::fs::create_dir_all(&tmp).map_err(at(&tmp))?;
    let meta = txn.open_table(OLD_META).map_err(|e| redb_err(&e))?;
    for (key, name) in [
        ("vote", VOTE),
        ("last_purged", PURGED),
        ("committed", COMMITTED),
    ] {
        if let Some(value) = meta.get(key).map_err(|e| redb_err(&e))? {
            write_meta(&tmp, name, value.value(), true)?;
        }
    }
    let log = txn.open_table(OLD_LOG).map_err(|e| redb_err(&e))?;
    let mut out: Option<(PathBuf, File)> = None;
    let mut bytes = Vec::new();
    for row in log.iter().map_err(|e| redb_err(&e))? {
        let (index, entry) = row.map_err(|e| redb_err(&e))?;
        let (path, file) = match &mut out {
            Some(open) => open,
            None => {
                let path = segment_path(&tmp, index.value());
                let file = File::create(&path).map_err(at(&path))?;
                out.insert((path, file))
            }
        };
        log_file::frame(index.value(), entry.value(), &mut bytes);
        if bytes.len() >= 8 << 20 {
            io::Write::write_all(file, &bytes).map_err(at(path))?;
            bytes.clear();
        }
    }
    if let Some((path, mut file)) = out {
        io::Write::write_all(&mut file, &bytes).map_err(at(&path))?;
        file.sync_all().map_err(at(&path))?;
    }
    sync_dir(&tmp)?;
    std::fs::rename(&tmp, dir).map_err(at(dir))?;
    let parent = dir.parent().unwrap_or(Path::new("."));
    sync_dir(parent)?;
    drop((log, meta, txn, db));
    remove_file(old)?;
    sync_dir(parent)
}

#[cfg(test)]
mod tests {
    use super::*;
    use openraft::testing::{blank_ent, log_id};
    use openraft::type_config::TypeConfigExt;

    fn segment_files(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .expect("read dir")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".log"))
            .collect();
        names.sort();
        names
    }

    async fn append(store: &mut LogStore, indexes: std::ops::Range<u64>) {
        let entries: Vec<Entry> = indexes.map(|i| blank_ent::<TypeConfig>(2, 1, i)).collect();
        let (tx, rx) = TypeConfig::oneshot();
        store
            .append(entries, IOFlushed::signal(tx))
            .await
            .expect("append");
        rx.await.expect("flush reported").expect("flushed");
    }

    async fn indexes(store: &mut LogStore, range: std::ops::RangeInclusive<u64>) -> Vec<u64> {
        let entries = store.try_get_log_entries(range).await.expect("read");
        entries.iter().map(|e| e.index()).collect()
    }

    async fn last_ids(store: &mut LogStore) -> (Option<u64>, Option<u64>) {
        let state = store.get_log_state().await.expect("state");
        (
            state.last_purged_log_id.map(|id| id.index()),
            state.last_log_id.map(|id| id.index()),
        )
    }

    #[tokio::test]
    async fn entries_outlive_a_restart_and_a_torn_last_write_is_cut_off() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path().join("raft-log");
        let mut store = LogStore::open(&dir).expect("open");
        for start in (0..60).step_by(6) {
            append(&mut store, start..start + 6).await;
        }
        drop(store);
        let segments = segment_files(&dir);
        assert!(segments.len() > 3, "60 entries span segments: {segments:?}");
        // A crash in the middle of the next append: half a record at the end.
        let mut torn = Vec::new();
        log_file::frame(
            60,
            &codec::encode(&blank_ent::<TypeConfig>(2, 1, 60)).expect("encode"),
            &mut torn,
        );
        let last = dir.join(segments.last().expect("a segment"));
        let mut file = std::fs::OpenOptions::new()
            .append(true)
            .open(&last)
            .expect("open");
        io::Write::write_all(&mut file, &torn[..torn.len() / 2]).expect("write");
        drop(file);

        let mut store = LogStore::open(&dir).expect("reopen");
        assert_eq!(
            indexes(&mut store, 0..=100).await,
            (0..60).collect::<Vec<_>>()
        );
        assert_eq!(last_ids(&mut store).await, (None, Some(59)));
        append(&mut store, 60..62).await;
        drop(store);
        let mut store = LogStore::open(&dir).expect("reopen again");
        let all = store.try_get_log_entries(0..62).await.expect("read");
        assert_eq!(all.len(), 62);
        assert!(
            all.iter()
                .enumerate()
                .all(|(i, e)| e.log_id() == log_id::<TypeConfig>(2, 1, i as u64))
        );
    }

    #[tokio::test]
    async fn reads_span_the_files_and_the_entries_kept_in_memory() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let mut store = LogStore::open(&tmp.path().join("raft-log")).expect("open");
        let total = CACHED_ENTRIES as u64 + 100;
        for start in (0..total).step_by(50) {
            append(&mut store, start..start + 50).await;
        }
        let held = lock(&store.shared.cache).entries.len();
        assert_eq!(
            held, CACHED_ENTRIES,
            "the oldest written entries leave memory"
        );
        let all = store.try_get_log_entries(0..total).await.expect("read");
        let ids: Vec<LogId> = all.iter().map(|e| e.log_id()).collect();
        let expected: Vec<LogId> = (0..total).map(|i| log_id::<TypeConfig>(2, 1, i)).collect();
        assert_eq!(ids, expected);
        assert_eq!(
            indexes(&mut store, 90..=110).await,
            (90..=110).collect::<Vec<_>>()
        );
    }

    #[tokio::test]
    async fn a_damaged_record_before_the_last_segment_is_an_error() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path().join("raft-log");
        let mut store = LogStore::open(&dir).expect("open");
        for start in (0..30).step_by(5) {
            append(&mut store, start..start + 5).await;
        }
        drop(store);
        let first = dir.join(&segment_files(&dir)[0]);
        let mut bytes = std::fs::read(&first).expect("read");
        let at = bytes.len() - 3;
        bytes[at] ^= 0xff;
        std::fs::write(&first, bytes).expect("write");
        let err = LogStore::open(&dir)
            .err()
            .expect("a damaged middle segment is refused");
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
        assert!(err.to_string().contains("not the last"), "{err}");
    }

    #[tokio::test]
    async fn purging_and_truncating_remove_whole_segments_and_outlive_a_restart() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path().join("raft-log");
        let mut store = LogStore::open(&dir).expect("open");
        for start in (0..80).step_by(4) {
            append(&mut store, start..start + 4).await;
        }
        let before = segment_files(&dir).len();
        store
            .purge(log_id::<TypeConfig>(2, 1, 30))
            .await
            .expect("purge");
        store
            .truncate_after(Some(log_id::<TypeConfig>(2, 1, 50)))
            .await
            .expect("truncate");
        let firsts: Vec<u64> = segment_files(&dir)
            .iter()
            .map(|n| n.trim_end_matches(".log").parse().expect("named by index"))
            .collect();
        assert!(
            firsts.len() + 2 <= before,
            "segments {before} -> {firsts:?}"
        );
        assert!(
            firsts[0] > 0 && firsts[0] <= 31,
            "purged segments removed: {firsts:?}"
        );
        assert!(
            firsts[firsts.len() - 1] <= 51,
            "truncated segments removed: {firsts:?}"
        );
        drop(store);

        let mut store = LogStore::open(&dir).expect("reopen");
        assert_eq!(last_ids(&mut store).await, (Some(30), Some(50)));
        assert_eq!(
            indexes(&mut store, 31..=80).await,
            (31..=50).collect::<Vec<_>>()
        );
        append(&mut store, 51..53).await;
        assert_eq!(last_ids(&mut store).await, (Some(30), Some(52)));
        // Purging past the end empties the log; appends then start where the purge ended.
        store
            .purge(log_id::<TypeConfig>(2, 1, 99))
            .await
            .expect("purge all");
        assert_eq!(segment_files(&dir), Vec::<String>::new());
        assert_eq!(last_ids(&mut store).await, (Some(99), Some(99)));
        append(&mut store, 100..102).await;
        drop(store);
        let mut store = LogStore::open(&dir).expect("reopen after purging all");
        assert_eq!(last_ids(&mut store).await, (Some(99), Some(101)));
        assert_eq!(indexes(&mut store, 0..=200).await, [100, 101]);
    }

    #[tokio::test]
    async fn a_redb_log_of_an_older_build_is_converted() {
        use redb::TableDefinition;
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path().join("raft-log");
        let old = tmp.path().join("raft-log.redb");
        let vote = VoteOf::<TypeConfig>::new(7, 1);
        {
            let db = redb::Database::create(&old).expect("create");
            let txn = db.begin_write().expect("txn");
            {
                let mut log = txn
                    .open_table(TableDefinition::<u64, &[u8]>::new("log"))
                    .expect("log table");
                for i in 3..9 {
                    let bytes = codec::encode(&blank_ent::<TypeConfig>(7, 1, i)).expect("encode");
                    log.insert(i, bytes.as_slice()).expect("insert");
                }
                let mut meta = txn
                    .open_table(TableDefinition::<&str, &[u8]>::new("meta"))
                    .expect("meta table");
                let purged = codec::encode(&log_id::<TypeConfig>(7, 1, 2)).expect("encode");
                meta.insert("last_purged", purged.as_slice())
                    .expect("insert");
                meta.insert("vote", codec::encode(&vote).expect("encode").as_slice())
                    .expect("insert");
            }
            txn.commit().expect("commit");
        }
        let mut store = LogStore::open(&dir).expect("open converts");
        assert!(!old.exists(), "the redb file is removed once converted");
        assert!(!tmp.path().join("raft-log.converting").exists());
        assert_eq!(store.read_vote().await.expect("vote"), Some(vote));
        assert_eq!(last_ids(&mut store).await, (Some(2), Some(8)));
        assert_eq!(
            indexes(&mut store, 0..=20).await,
            (3..9).collect::<Vec<_>>()
        );
        append(&mut store, 9..10).await;
        drop(store);
        let mut store = LogStore::open(&dir).expect("reopen");
        assert_eq!(
            indexes(&mut store, 0..=20).await,
            (3..10).collect::<Vec<_>>()
        );
    }
}
