//! One collection's state in this process: whether the process holds the collection's lock (a
//! *lease*), what it has open under it, and which calls are using it.
//!
//! Calls use a collection either *shared* (searches, listings, upserts and deletes, which qdrant-edge
//! runs side by side; writes are serialised further by [`EdgeCollection::write`]) or *exclusively*
//! (acquiring the lease, loading, creating or dropping the collection). A lease is acquired on
//! first use and kept while the process is alone; a watcher thread per lease polls the lock's wait
//! file, and when another process announces itself (and the lease is idle, or [`MIN_HOLD`] old),
//! new calls here wait, the running ones finish, and the lease is released: the shard is closed
//! (flushed, which frees qdrant-edge's own lock on its write-ahead log) and the lock file unlocked.

use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError, Weak};
use std::time::{Duration, Instant};

use cairn_core::index::IndexError;

use super::collection::EdgeCollection;
use super::lock::{LockFiles, WaitProbe};

/// How often the holder of a lease checks whether another process waits for it.
const WAIT_POLL: Duration = Duration::from_millis(20);
/// How long a busy holder keeps a lease before letting a waiting process have it (an idle one lets
/// go at once): under contention, each hand-over (closing and loading the shard) then pays for a
/// batch of calls rather than one.
const MIN_HOLD: Duration = Duration::from_millis(100);

/// What a lease knows of its collection.
#[derive(Debug)]
pub enum Loaded {
    /// Not read from disk yet.
    Unknown,
    /// No collection on disk (no spec file).
    Absent,
    /// The collection, open.
    Open(Arc<EdgeCollection>),
}

/// The collection's lock, held by this process, and what is open under it.
#[derive(Debug)]
pub struct Lease {
    /// Declared first so it is dropped first: the shard is closed before the lock is released.
    pub collection: Loaded,
    _lock: std::fs::File,
}

#[derive(Debug, Default)]
struct State {
    lease: Option<Lease>,
    /// Bumped whenever a lease is acquired or released, so a watcher knows its lease is gone.
    lease_id: u64,
    /// Shared calls running.
    readers: usize,
    /// An exclusive call is running (it has taken `lease` out of the state meanwhile).
    exclusive: bool,
    /// Exclusive calls waiting; new shared calls let them go first.
    exclusive_waiting: usize,
    /// Another process waits: start no call until the lease has been released.
    yielding: bool,
}

/// One collection of one [`super::EdgeIndex`].
#[derive(Debug)]
pub struct Slot {
    name: String,
    files: LockFiles,
    state: Mutex<State>,
    changed: Condvar,
}

/// The outcome of [`Slot::enter_shared`].
pub enum Shared<'a> {
    /// The collection is open; the guard counts the call until dropped.
    Open(SharedGuard<'a>),
    /// The collection does not exist.
    Absent,
    /// Load it, under an exclusive call that then runs the call itself.
    NotLoaded,
}

impl Slot {
    pub fn new(name: &str, files: LockFiles) -> Self {
        Self {
            name: name.to_owned(),
            files,
            state: Mutex::new(State::default()),
            changed: Condvar::new(),
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn wait<'a>(&self, state: MutexGuard<'a, State>) -> MutexGuard<'a, State> {
        self.changed
            .wait(state)
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Starts a shared call. Without a lease, `absent_on_disk` may answer [`Shared::Absent`]
    /// without taking the lock (a collection is committed by its spec file, written last).
    pub fn enter_shared(&self, absent_on_disk: impl FnOnce() -> bool) -> Shared<'_> {
        let mut state = self.state();
        while state.exclusive || state.exclusive_waiting > 0 || state.yielding {
            state = self.wait(state);
        }
        match state.lease.as_ref().map(|lease| &lease.collection) {
            None if absent_on_disk() => Shared::Absent,
            None | Some(Loaded::Unknown) => Shared::NotLoaded,
            Some(Loaded::Absent) => Shared::Absent,
            Some(Loaded::Open(collection)) => {
                let collection = collection.clone();
                state.readers += 1;
                Shared::Open(SharedGuard {
                    collection,
                    _reader: Reader(self),
                })
            }
        }
    }

    /// Runs `f` with the lease (acquiring it first, which may block on another process) while no
    /// other call of this process uses the collection.
    pub fn exclusive<T>(
        self: &Arc<Self>,
        f: impl FnOnce(&mut Lease) -> Result<T, IndexError>,
    ) -> Result<T, IndexError> {
        let mut state = self.state();
        state.exclusive_waiting += 1;
        while state.exclusive || state.readers > 0 || state.yielding {
            state = self.wait(state);
        }
        state.exclusive_waiting -= 1;
        state.exclusive = true;
        let lease = state.lease.take();
        drop(state);
        let mut guard = ExclusiveGuard { slot: self, lease };
        let lease = match &mut guard.lease {
            Some(lease) => lease,
            empty => empty.insert(self.acquire()?),
        };
        f(lease)
    }

    /// Takes the collection's lock and starts the lease's watcher.
    fn acquire(self: &Arc<Self>) -> Result<Lease, IndexError> {
        let unavailable = |err: std::io::Error| {
            IndexError::Unavailable(format!(
                "cannot lock collection `{}` of the embedded index at `{}`: {err}; check that the index directory is writable",
                self.name,
                self.files.path().display()
            ))
        };
        let lock = self.files.acquire().map_err(unavailable)?;
        let probe = self.files.probe().map_err(unavailable)?;
        let lease_id = {
            let mut state = self.state();
            state.lease_id += 1;
            state.lease_id
        };
        let slot = Arc::downgrade(self);
        std::thread::Builder::new()
            .name("cairn-edge-lease".to_owned())
            .spawn(move || watch(&slot, lease_id, &probe))
            .map_err(unavailable)?;
        tracing::debug!(collection = %self.name, "embedded index: collection locked");
        Ok(Lease {
            collection: Loaded::Unknown,
            _lock: lock,
        })
    }

    /// Releases the lease if one is held: closes the shard, then unlocks. Call with the state
    /// locked and no call running.
    fn release(&self, state: &mut State) {
        let lease = state.lease.take();
        state.yielding = false;
        state.lease_id += 1;
        self.changed.notify_all();
        if lease.is_some() {
            // Closing flushes the shard; the state stays locked meanwhile so no call starts.
            drop(lease);
            tracing::debug!(collection = %self.name, "embedded index: collection released to another process");
        }
    }
}

/// Polls for processes waiting on the lease `lease_id`, and releases it for them: at once when
/// idle, else once it is [`MIN_HOLD`] old and the running calls are done.
fn watch(slot: &Weak<Slot>, lease_id: u64, probe: &WaitProbe) {
    let acquired = Instant::now();
    loop {
        std::thread::sleep(WAIT_POLL);
        let Some(slot) = slot.upgrade() else {
            return;
        };
        let mut state = slot.state();
        if state.lease_id != lease_id {
            return;
        }
        let idle = state.readers == 0 && !state.exclusive;
        if !state.yielding && (idle || acquired.elapsed() >= MIN_HOLD) && probe.others_waiting() {
            state.yielding = true;
        }
        if state.yielding && state.readers == 0 && !state.exclusive {
            slot.release(&mut state);
            return;
        }
    }
}

/// A running shared call.
pub struct SharedGuard<'a> {
    /// Declared first so it is dropped first: the collection is let go before the count says
    /// that no call holds it (a release closes the shard only when this is the last handle).
    collection: Arc<EdgeCollection>,
    _reader: Reader<'a>,
}

impl SharedGuard<'_> {
    pub fn collection(&self) -> &EdgeCollection {
        &self.collection
    }
}

/// Counts a shared call until dropped.
struct Reader<'a>(&'a Slot);

impl Drop for Reader<'_> {
    fn drop(&mut self) {
        let slot = self.0;
        let mut state = slot.state();
        state.readers -= 1;
        if state.readers == 0 {
            if state.yielding && !state.exclusive {
                slot.release(&mut state);
            }
            slot.changed.notify_all();
        }
    }
}

/// A running exclusive call; puts the lease back when done.
struct ExclusiveGuard<'a> {
    slot: &'a Slot,
    lease: Option<Lease>,
}

impl Drop for ExclusiveGuard<'_> {
    fn drop(&mut self) {
        let mut state = self.slot.state();
        state.lease = self.lease.take();
        state.exclusive = false;
        if state.yielding {
            self.slot.release(&mut state);
        }
        self.slot.changed.notify_all();
    }
}
