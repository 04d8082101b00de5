//! The watch event window and fan-out.
//!
//! Every applied change becomes a [`WatchEvent`] carrying its revision. The hub keeps the last
//! `window` events so a watch can resume from a recent resourceVersion, and broadcasts new
//! events on a bounded channel. A watcher that falls behind the channel is ended (the client
//! re-watches from its last revision, as client-go does); one that asks for a revision older
//! than the window gets "too old" (410 Expired at the API).

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use tokio::sync::broadcast;

use super::StoredObject;

/// ADDED, MODIFIED, DELETED.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventType {
    /// Created.
    Added,
    /// Changed.
    Modified,
    /// Removed.
    Deleted,
}

impl EventType {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Added => "ADDED",
            EventType::Modified => "MODIFIED",
            EventType::Deleted => "DELETED",
        }
    }
}

/// One change.
#[derive(Debug, Clone)]
pub struct WatchEvent {
    /// The revision (log index) of the change.
    pub revision: u64,
    /// What happened.
    pub kind: EventType,
    /// Group-qualified plural.
    pub resource: Arc<str>,
    /// The object after the change (for a delete: its last state, at the deleting revision).
    pub object: Arc<StoredObject>,
    /// For a modification, the object before it.
    pub prev: Option<Arc<StoredObject>>,
}

impl WatchEvent {
    pub(super) fn new(
        revision: u64,
        kind: EventType,
        resource: &str,
        object: Arc<StoredObject>,
        prev: Option<Arc<StoredObject>>,
    ) -> Self {
        WatchEvent {
            revision,
            kind,
            resource: Arc::from(resource),
            object,
            prev,
        }
    }
}

struct Window {
    events: VecDeque<Arc<WatchEvent>>,
    /// Every event with a revision above this is in `events` (or still to come).
    complete_after: u64,
    /// The latest applied revision.
    revision: u64,
}

/// The hub.
pub struct WatchHub {
    window: Mutex<Window>,
    capacity: usize,
    tx: broadcast::Sender<Arc<WatchEvent>>,
}

/// How a watch starts: the events to replay, then the live receiver.
pub struct WatchStart {
    /// Events after the requested revision, oldest first.
    pub replay: Vec<Arc<WatchEvent>>,
    /// New events.
    pub live: broadcast::Receiver<Arc<WatchEvent>>,
    /// The store revision when the watch started.
    pub revision: u64,
}

/// The requested revision is older than the window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TooOld {
    /// The oldest revision a watch may start from now.
    pub oldest: u64,
}

impl WatchHub {
    /// A hub keeping `capacity` events, starting at `revision`.
    pub fn new(capacity: usize, revision: u64) -> Self {
        let (tx, _) = broadcast::channel(4096);
        WatchHub {
            window: Mutex::new(Window {
                events: VecDeque::with_capacity(capacity.min(1024)),
                complete_after: revision,
                revision,
            }),
            capacity,
            tx,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Window> {
        self.window
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub(super) fn publish(&self, event: WatchEvent) {
        let event = Arc::new(event);
        let mut w = self.lock();
        if w.events.len() >= self.capacity
            && let Some(old) = w.events.pop_front()
        {
            w.complete_after = old.revision;
        }
        w.revision = w.revision.max(event.revision);
        w.events.push_back(event.clone());
        // No receivers is fine.
        let _ = self.tx.send(event);
    }

    pub(super) fn advance(&self, revision: u64) {
        let mut w = self.lock();
        w.revision = w.revision.max(revision);
    }

    pub(super) fn reset(&self, revision: u64) {
        let mut w = self.lock();
        w.events.clear();
        w.complete_after = revision;
        w.revision = revision;
    }

    /// The latest revision seen.
    pub fn revision(&self) -> u64 {
        self.lock().revision
    }

    /// The events after revision `from` still in the window, in order, and the revision they
    /// bring a reader to (for readers that catch up now and then instead of watching).
    pub fn since(&self, from: u64) -> Result<(Vec<Arc<WatchEvent>>, u64), TooOld> {
        let w = self.lock();
        if from < w.complete_after {
            return Err(TooOld {
                oldest: w.complete_after,
            });
        }
        let first = w.events.partition_point(|e| e.revision <= from);
        Ok((w.events.range(first..).cloned().collect(), w.revision))
    }

    /// Starts a watch from `from` (events with a revision above it), or from now (`None`).
    pub fn subscribe(&self, from: Option<u64>) -> Result<WatchStart, TooOld> {
        let w = self.lock();
        let live = self.tx.subscribe();
        let replay = match from {
            None => Vec::new(),
            Some(rv) if rv >= w.complete_after => w
                .events
                .iter()
                .filter(|e| e.revision > rv)
                .cloned()
                .collect(),
            Some(_) => {
                return Err(TooOld {
                    oldest: w.complete_after,
                });
            }
        };
        Ok(WatchStart {
            replay,
            live,
            revision: w.revision,
        })
    }
}
