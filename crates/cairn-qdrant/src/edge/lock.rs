//! The file locks that give one process at a time a collection (see the module docs of `edge`).
//!
//! ```text
//! <root>/.locks/<collection>.lock   held exclusively by the process that has the collection open
//! <root>/.locks/<collection>.wait   held shared by every process blocked on the `.lock` file
//! ```
//!
//! Both are `flock`s (std's `File::lock` family), so they belong to an open file description: two
//! handles opened separately in one process exclude each other like two processes, and the kernel
//! drops them when a process dies. The files live outside the collection's directory and are never
//! deleted: deleting a locked file would let a later process lock a new file of the same name
//! while the old one is still held.

use std::fs::{File, OpenOptions, TryLockError};
use std::io;
use std::path::{Path, PathBuf};

/// The directory under the index root that holds the lock files; collection names cannot start
/// with a dot, so it never clashes with a collection.
pub const LOCK_DIR: &str = ".locks";

/// The lock files of one collection.
#[derive(Debug, Clone)]
pub struct LockFiles {
    lock: PathBuf,
    wait: PathBuf,
}

impl LockFiles {
    pub fn new(root: &Path, name: &str) -> Self {
        let dir = root.join(LOCK_DIR);
        Self {
            lock: dir.join(format!("{name}.lock")),
            wait: dir.join(format!("{name}.wait")),
        }
    }

    /// The lock file, for error messages.
    pub fn path(&self) -> &Path {
        &self.lock
    }

    /// Blocks until this handle holds the collection's lock; dropping the file releases it.
    ///
    /// Processes already waiting go first (as far as the kernel's wake-up order allows): this
    /// waits until none is announced, then tries the lock, and when it is held elsewhere,
    /// announces itself on the `.wait` file while it blocks, so that the holder knows to let go.
    pub fn acquire(&self) -> io::Result<File> {
        if let Some(dir) = self.lock.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let lock = open(&self.lock)?;
        let wait = open(&self.wait)?;
        wait.lock()?;
        wait.unlock()?;
        match lock.try_lock() {
            Ok(()) => return Ok(lock),
            Err(TryLockError::WouldBlock) => {}
            Err(TryLockError::Error(err)) => return Err(err),
        }
        wait.lock_shared()?;
        lock.lock()?;
        // Closing `wait` withdraws the announcement even if this fails.
        wait.unlock()?;
        Ok(lock)
    }

    /// A handle to ask whether other processes wait for the collection.
    pub fn probe(&self) -> io::Result<WaitProbe> {
        open(&self.wait).map(WaitProbe)
    }
}

/// Tells the holder of a collection whether another process is blocked on it.
#[derive(Debug)]
pub struct WaitProbe(File);

impl WaitProbe {
    /// Whether some other handle announces that it waits (holds the `.wait` file); never blocks.
    pub fn others_waiting(&self) -> bool {
        match self.0.try_lock() {
            Ok(()) => {
                if let Err(err) = self.0.unlock() {
                    tracing::warn!(error = %err, "cannot unlock the embedded index's wait file");
                }
                false
            }
            Err(TryLockError::WouldBlock) => true,
            Err(TryLockError::Error(err)) => {
                tracing::warn!(error = %err, "cannot probe the embedded index's wait file");
                false
            }
        }
    }
}

fn open(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
}
