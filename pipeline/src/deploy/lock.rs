//! One writer at a time per target (and per workspace): an OS advisory lock (`flock`) on
//! `.deploy.lock` at the target's root. The kernel releases it when its holder exits, however
//! it exits, so there is no stale lock to detect: no PID checks, no TTL, no take-over race.
//! The file itself is never deleted (deleting a locked file would let a second process lock a
//! new inode at the same path); it holds the current holder's description, for the error
//! message of the next one.
//!
//! Readers that must see a stable source (promote copies from one target into another) take
//! the same lock shared: writers wait for no reader, they are refused while one holds it.

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

const LOCK_NAME: &str = ".deploy.lock";

/// Who holds a lock, recorded in it for the error message of the next one.
#[derive(Debug, Serialize, Deserialize)]
pub(super) struct Owner {
    pub pid: u32,
    pub host: String,
    pub since_unix: u64,
    pub command: String,
}

impl Owner {
    /// The holder as an error message names it.
    pub(super) fn describe(owner: Option<&Owner>) -> String {
        owner.map_or_else(
            || "another process".to_string(),
            |o| {
                format!(
                    "`{}` (pid {} on {}, since {}s ago)",
                    o.command,
                    o.pid,
                    o.host,
                    now_unix().saturating_sub(o.since_unix)
                )
            },
        )
    }
}

/// Held while deploying, rolling back, promoting or collecting garbage; released on drop and
/// by the kernel when the process dies.
#[derive(Debug)]
pub struct DeployLock {
    file: File,
    path: PathBuf,
    exclusive: bool,
}

impl DeployLock {
    /// Takes the exclusive lock of `target`, or says who holds it.
    pub fn acquire(target: &Path, command: &str) -> Result<Self> {
        Self::take(target, command, true)
    }

    /// Takes the lock shared: writers are refused while it is held, other readers are not.
    pub fn acquire_shared(target: &Path, command: &str) -> Result<Self> {
        Self::take(target, command, false)
    }

    fn take(target: &Path, command: &str, exclusive: bool) -> Result<Self> {
        std::fs::create_dir_all(target)
            .with_context(|| format!("creating {}", target.display()))?;
        let path = target.join(LOCK_NAME);
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .with_context(|| format!("opening {}", path.display()))?;
        let taken = if exclusive {
            file.try_lock()
        } else {
            file.try_lock_shared()
        };
        match taken {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let mut text = String::new();
                let _ = file.read_to_string(&mut text);
                let holder = Owner::describe(serde_json::from_str::<Owner>(&text).ok().as_ref());
                anyhow::bail!(
                    "{} is locked by {holder}: another searchbar command (a deploy, rollback, \
                     promote or pipeline run) is working there. Run again when it has finished.",
                    path.display()
                );
            }
            Err(TryLockError::Error(e)) => {
                return Err(e).with_context(|| format!("locking {}", path.display()))
            }
        }
        if exclusive {
            let owner = Owner {
                pid: std::process::id(),
                host: hostname(),
                since_unix: now_unix(),
                command: command.to_string(),
            };
            // Diagnostics only: the lock is the flock, not these bytes.
            let _ = file
                .set_len(0)
                .and_then(|()| file.rewind())
                .and_then(|()| file.write_all(&serde_json::to_vec(&owner).unwrap_or_default()));
        }
        if exclusive {
            probe(&path.display().to_string(), "acquire");
        }
        Ok(Self {
            file,
            path,
            exclusive,
        })
    }
}

impl Drop for DeployLock {
    fn drop(&mut self) {
        if self.exclusive {
            probe(&self.path.display().to_string(), "release");
        }
        let _ = self.file.unlock();
    }
}

/// With `SEARCHBAR_LOCK_PROBE=FILE`, every exclusive holder appends `acquire`/`release` lines
/// (lock, pid) to FILE while it holds the lock, so a test racing many processes can check
/// from the order of the lines that no two ever held one target at once.
pub(super) fn probe(lock: &str, what: &str) {
    let Some(log) = std::env::var_os("SEARCHBAR_LOCK_PROBE") else {
        return;
    };
    let line = format!("{lock} {what} {}\n", std::process::id());
    if let Ok(mut f) = OpenOptions::new().append(true).create(true).open(log) {
        // One write(2) with O_APPEND: lines from different processes never interleave.
        let _ = f.write_all(line.as_bytes());
    }
}

pub(super) fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .or_else(|_| std::env::var("HOSTNAME"))
        .unwrap_or_else(|_| "unknown".into())
}

pub(super) fn now_unix() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_holder_is_refused_until_the_first_lets_go() {
        let dir = tempfile::tempdir().unwrap();
        let lock = DeployLock::acquire(dir.path(), "deploy r1 to prod").unwrap();
        // A second open file description in the same process conflicts like another process.
        let e = DeployLock::acquire(dir.path(), "deploy r2 to prod")
            .unwrap_err()
            .to_string();
        assert!(e.contains("locked by `deploy r1 to prod`"), "{e}");
        let e = DeployLock::acquire_shared(dir.path(), "promote")
            .unwrap_err()
            .to_string();
        assert!(e.contains("locked by"), "{e}");
        drop(lock);
        let _again = DeployLock::acquire(dir.path(), "deploy r2 to prod").unwrap();
    }

    #[test]
    fn an_empty_or_foreign_lock_file_is_not_a_lock() {
        // The old scheme treated the file's presence as the lock: an empty file (a holder
        // between create and write) counted as stale and was deleted under its holder.
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(LOCK_NAME), b"").unwrap();
        let held = DeployLock::acquire(dir.path(), "deploy").unwrap();
        assert!(dir.path().join(LOCK_NAME).exists());
        assert!(DeployLock::acquire(dir.path(), "rollback").is_err());
        drop(held);
        // Dropping never removes the file: a later holder locks the same inode.
        assert!(dir.path().join(LOCK_NAME).exists());
    }

    #[test]
    fn shared_holders_coexist_and_keep_writers_out() {
        let dir = tempfile::tempdir().unwrap();
        let a = DeployLock::acquire_shared(dir.path(), "promote a").unwrap();
        let b = DeployLock::acquire_shared(dir.path(), "promote b").unwrap();
        assert!(DeployLock::acquire(dir.path(), "deploy").is_err());
        drop((a, b));
        DeployLock::acquire(dir.path(), "deploy").unwrap();
    }
}
