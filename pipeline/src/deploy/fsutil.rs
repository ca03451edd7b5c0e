//! Crash-safe file primitives: a reader sees a file's old bytes or its new bytes, never a mix.

use anyhow::{Context, Result};
use searchbar_store::atomic::{self, is_temporary};
use std::fs;
use std::path::Path;

/// Writes `bytes` to `path` through a temporary sibling, fsync and rename, then fsyncs the
/// directory so the rename itself survives a crash.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path.parent().context("path has no parent directory")?;
    fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    atomic::write_atomic_with(path, &mut |out| out.write_all(bytes), &mut || {
        crate::fault::point("write_atomic: temp written, before rename")
    })
    .with_context(|| format!("writing {}", path.display()))?;
    sync_dir(dir)
}

/// Fails unless `path` is a regular file itself (not a symlink, device or directory): what a
/// target serves must be the bytes the manifest hashed, not whatever a link points at.
pub fn require_regular(path: &Path) -> Result<()> {
    let meta = fs::symlink_metadata(path).with_context(|| format!("reading {}", path.display()))?;
    if meta.file_type().is_symlink() {
        anyhow::bail!(
            "{} is a symbolic link; releases hold regular files only",
            path.display()
        );
    }
    if !meta.is_file() {
        anyhow::bail!("{} is not a regular file", path.display());
    }
    Ok(())
}

/// Makes a directory's entries (renames, new files) durable.
pub fn sync_dir(dir: &Path) -> Result<()> {
    atomic::sync_dir(dir).with_context(|| format!("syncing directory {}", dir.display()))
}

/// Places `src` at `dst` without rewriting bytes when both are on one file system (a hard
/// link); otherwise copies through a temporary file. Content-addressed files never change,
/// so sharing the inode is safe.
pub fn link_or_copy(src: &Path, dst: &Path) -> Result<()> {
    // A hard link to a symlink is a symlink: check the source itself.
    require_regular(src)?;
    if fs::hard_link(src, dst).is_ok() {
        return Ok(());
    }
    let bytes = fs::read(src).with_context(|| format!("reading {}", src.display()))?;
    write_atomic(dst, &bytes)
}

/// Removes the temporaries directly in `dir`; returns how many went, and the directories
/// that are not temporaries (for a caller walking a tree).
fn sweep(dir: &Path) -> (usize, Vec<std::path::PathBuf>) {
    let (mut removed, mut subdirs) = (0, Vec::new());
    let Ok(entries) = fs::read_dir(dir) else {
        return (removed, subdirs);
    };
    for entry in entries.flatten() {
        // The entry's own type: a link named like a temporary is removed, never followed.
        let Ok(kind) = entry.file_type() else {
            continue;
        };
        let path = entry.path();
        if is_temporary(&entry.file_name().to_string_lossy()) {
            let gone = if kind.is_dir() {
                fs::remove_dir_all(&path)
            } else {
                fs::remove_file(&path)
            };
            removed += usize::from(gone.is_ok());
        } else if kind.is_dir() {
            subdirs.push(path);
        }
    }
    (removed, subdirs)
}

/// Removes stale temporaries a killed run left behind in `dir`. Only call it while holding
/// the lock that covers `dir`: another writer's temporaries are live.
pub fn remove_temporaries(dir: &Path) -> Result<()> {
    sweep(dir);
    Ok(())
}

/// [`remove_temporaries`] through a whole tree (the workspace), at any depth. Only call it
/// while holding the lock that covers `root`.
pub fn remove_temporaries_below(root: &Path) -> Result<usize> {
    let mut removed = 0;
    let mut dirs = vec![root.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        let (n, subdirs) = sweep(&dir);
        removed += n;
        dirs.extend(subdirs);
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_write_leaves_no_temporary() {
        let dir = tempfile::tempdir().unwrap();
        // Renaming a file over a non-empty directory fails after the temporary is written.
        let target = dir.path().join("out");
        fs::create_dir_all(target.join("inside")).unwrap();
        assert!(write_atomic(&target, b"bytes").is_err());
        let left: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .flatten()
            .map(|e| e.file_name())
            .filter(|n| n != "out")
            .collect();
        assert!(left.is_empty(), "{left:?}");
    }

    #[test]
    fn temporaries_of_killed_writes_are_swept_at_any_depth() {
        let dir = tempfile::tempdir().unwrap();
        let deep = dir.path().join("a/b");
        fs::create_dir_all(deep.join(".tmp-9-release")).unwrap();
        fs::write(deep.join(".tmp-9-index.sbi"), b"x").unwrap();
        fs::write(dir.path().join(".documents.jsonl.tmp-9"), b"x").unwrap();
        fs::write(deep.join("keep.json"), b"x").unwrap();
        fs::write(dir.path().join(".deploy.lock"), b"").unwrap();
        assert_eq!(remove_temporaries_below(dir.path()).unwrap(), 3);
        assert!(deep.join("keep.json").exists());
        assert!(dir.path().join(".deploy.lock").exists());
    }

    #[test]
    fn links_are_not_placed_as_release_files() {
        let dir = tempfile::tempdir().unwrap();
        let link = dir.path().join("z.txt");
        std::os::unix::fs::symlink("/etc/passwd", &link).unwrap();
        let e = link_or_copy(&link, &dir.path().join("copy")).unwrap_err();
        assert!(e.to_string().contains("symbolic link"), "{e}");
        assert!(!dir.path().join("copy").exists());
    }
}
