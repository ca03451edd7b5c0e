//! One deploy at a time per target. The lock is a file created with O_EXCL that records its
//! owner; a lock whose process is gone (same host) or that is older than the TTL (another
//! host, which we cannot probe) is stale and is taken over, so a crashed run never blocks.

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

const LOCK_NAME: &str = ".deploy.lock";
/// A lock held longer than this by another host is considered abandoned.
const FOREIGN_TTL: Duration = Duration::from_secs(30 * 60);

#[derive(Debug, Serialize, Deserialize)]
struct Owner {
    pid: u32,
    host: String,
    since_unix: u64,
    command: String,
}

/// Held while deploying; released on drop (also on error and panic unwinding).
#[derive(Debug)]
pub struct DeployLock {
    path: PathBuf,
}

impl DeployLock {
    pub fn acquire(target: &Path, command: &str) -> Result<Self> {
        fs::create_dir_all(target).with_context(|| format!("creating {}", target.display()))?;
        let path = target.join(LOCK_NAME);
        let owner = Owner {
            pid: std::process::id(),
            host: hostname(),
            since_unix: now_unix(),
            command: command.to_string(),
        };
        for _ in 0..2 {
            match OpenOptions::new().write(true).create_new(true).open(&path) {
                Ok(mut f) => {
                    f.write_all(&serde_json::to_vec(&owner)?)?;
                    f.sync_all()?;
                    return Ok(Self { path });
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    let held = fs::read(&path)
                        .ok()
                        .and_then(|b| serde_json::from_slice(&b).ok());
                    match held {
                        Some(o) if !is_stale(&o) => bail!(
                            "{} is locked by `{}` (pid {} on {}, since {}s ago); another deploy \
                             is running on this target. Wait for it, or remove the file if you \
                             are sure that run is gone.",
                            path.display(),
                            o.command,
                            o.pid,
                            o.host,
                            now_unix().saturating_sub(o.since_unix)
                        ),
                        // Stale or unreadable (a crash between create and write): take it over.
                        _ => {
                            eprintln!("note: removing stale deploy lock {}", path.display());
                            let _ = fs::remove_file(&path);
                        }
                    }
                }
                Err(e) => return Err(e).with_context(|| format!("creating {}", path.display())),
            }
        }
        bail!("could not take the deploy lock {}", path.display())
    }
}

impl Drop for DeployLock {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.path);
    }
}

fn is_stale(o: &Owner) -> bool {
    if o.host == hostname() {
        return !Path::new(&format!("/proc/{}", o.pid)).exists() || o.pid == std::process::id();
    }
    now_unix().saturating_sub(o.since_unix) > FOREIGN_TTL.as_secs()
}

fn hostname() -> String {
    fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .or_else(|_| std::env::var("HOSTNAME"))
        .unwrap_or_else(|_| "unknown".into())
}

fn now_unix() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_holder_is_refused_and_stale_locks_are_taken_over() {
        let dir = tempfile::tempdir().unwrap();
        let lock = DeployLock::acquire(dir.path(), "deploy").unwrap();
        // Same process counts as stale (a crashed earlier attempt of ours), so fake a live
        // owner: pid 1 always exists.
        drop(lock);
        let live = Owner {
            pid: 1,
            host: hostname(),
            since_unix: now_unix(),
            command: "deploy --env prod".into(),
        };
        fs::write(
            dir.path().join(LOCK_NAME),
            serde_json::to_vec(&live).unwrap(),
        )
        .unwrap();
        let e = DeployLock::acquire(dir.path(), "deploy")
            .unwrap_err()
            .to_string();
        assert!(e.contains("locked by `deploy --env prod`"), "{e}");
        let dead = Owner {
            pid: u32::MAX - 1,
            ..live
        };
        fs::write(
            dir.path().join(LOCK_NAME),
            serde_json::to_vec(&dead).unwrap(),
        )
        .unwrap();
        let _lock = DeployLock::acquire(dir.path(), "deploy").unwrap();
    }
}
