//! A deploy target: a directory of immutable releases and one pointer (see searchbar-release).

use super::fsutil::{link_or_copy, remove_temporaries, sync_dir, write_atomic};
use super::lock::DeployLock;
use crate::fault;
use anyhow::{bail, Context, Result};
use searchbar_release::{Manifest, Pointer, FILES_PREFIX, MANIFEST_NAME, POINTER_NAME};
use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

/// How many past live releases the pointer remembers for rollback.
const HISTORY_LEN: usize = 20;

/// The stable page at a target's root: it reads the pointer and opens the live release's own
/// page, so a page, once open, keeps using the release it came from.
const LOADER_HTML: &str = include_str!("loader.html");

#[derive(Debug, Clone)]
pub struct Target {
    pub name: String,
    pub root: PathBuf,
}

impl Target {
    pub fn new(name: &str, root: PathBuf) -> Self {
        Self {
            name: name.to_string(),
            root,
        }
    }

    pub fn files_dir(&self) -> PathBuf {
        self.root.join("files")
    }

    pub fn release_dir(&self, id: &str) -> PathBuf {
        self.root.join("releases").join(id)
    }

    /// The live release, if any. A pointer that cannot be read is an error, not "none":
    /// deploying over an unreadable pointer would silently drop the rollback history.
    pub fn pointer(&self) -> Result<Option<Pointer>> {
        let path = self.root.join(POINTER_NAME);
        match fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map(Some)
                .with_context(|| format!("{}: not a valid pointer", path.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
        }
    }

    pub fn manifest(&self, id: &str) -> Result<Manifest> {
        let path = self.release_dir(id).join(MANIFEST_NAME);
        let bytes = fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
        Ok(Manifest::from_json(&bytes, &path.display().to_string())?)
    }

    /// Where a manifest path (relative to the release directory) lives on disk.
    pub fn artifact_path(&self, rel: &str) -> Result<PathBuf> {
        let name = rel
            .strip_prefix(FILES_PREFIX)
            .filter(|n| !n.is_empty() && !n.contains('/') && !n.starts_with('.'))
            .with_context(|| format!("artifact path {rel:?} is not under {FILES_PREFIX}"))?;
        Ok(self.files_dir().join(name))
    }

    /// Checks that release `id` is complete: manifest readable, every artifact present with
    /// the right size and sha256, and its page present.
    pub fn verify(&self, id: &str) -> Result<Manifest> {
        let manifest = self.manifest(id)?;
        if manifest.release != id {
            bail!(
                "{}: manifest names release {}, not {id}",
                self.release_dir(id).display(),
                manifest.release
            );
        }
        for file in manifest.files.all() {
            let path = self.artifact_path(&file.path)?;
            let bytes = fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
            file.verify(&bytes)
                .with_context(|| format!("release {id} on {}", self.name))?;
        }
        let page = self.release_dir(id).join("index.html");
        if !page.is_file() {
            bail!("{}: missing", page.display());
        }
        Ok(manifest)
    }

    /// Releases present on the target, oldest first.
    pub fn releases(&self) -> Result<Vec<Manifest>> {
        let dir = self.root.join("releases");
        let mut out = Vec::new();
        let Ok(entries) = fs::read_dir(&dir) else {
            return Ok(out);
        };
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().to_string();
            if name.starts_with('.') {
                continue;
            }
            if let Ok(m) = self.manifest(&name) {
                out.push(m);
            }
        }
        out.sort_by(|a, b| (&a.created, &a.release).cmp(&(&b.created, &b.release)));
        Ok(out)
    }

    /// Copies (or hard-links) release `id` from `source` (a target or an export, same layout)
    /// into this target without making it live. Artifacts first, then the release directory
    /// by one rename, so a half-copied release is never visible under its name.
    fn install_from(&self, source: &Target, id: &str) -> Result<Manifest> {
        let manifest = source.verify(id)?;
        let files = self.files_dir();
        fs::create_dir_all(&files)?;
        remove_temporaries(&files)?;
        for file in manifest.files.all() {
            let dst = self.artifact_path(&file.path)?;
            if let Ok(existing) = fs::read(&dst) {
                if file.verify(&existing).is_ok() {
                    continue;
                }
                // Same content-addressed name but wrong bytes: a previous crash or tampering.
                eprintln!("note: replacing corrupt {}", dst.display());
                fs::remove_file(&dst)?;
            }
            let src = source.artifact_path(&file.path)?;
            link_or_copy(&src, &dst)?;
            fault::point("install: artifact placed");
        }
        sync_dir(&files)?;
        let releases = self.root.join("releases");
        fs::create_dir_all(&releases)?;
        remove_temporaries(&releases)?;
        let final_dir = self.release_dir(id);
        if final_dir.exists() {
            if self.verify(id).is_ok() {
                return Ok(manifest);
            }
            bail!(
                "{} exists but is not a complete copy of release {id}; refusing to overwrite an \
                 immutable release",
                final_dir.display()
            );
        }
        let tmp = releases.join(format!(".tmp-{}-{id}", std::process::id()));
        fs::create_dir_all(&tmp)?;
        for entry in fs::read_dir(source.release_dir(id))? {
            let entry = entry?;
            link_or_copy(&entry.path(), &tmp.join(entry.file_name()))?;
        }
        sync_dir(&tmp)?;
        fault::point("install: release directory staged");
        fs::rename(&tmp, &final_dir)
            .with_context(|| format!("renaming into {}", final_dir.display()))?;
        sync_dir(&releases)?;
        fault::point("install: release directory in place");
        Ok(manifest)
    }

    /// Makes `id` live with one atomic pointer write.
    fn flip(&self, id: &str, history: Vec<String>) -> Result<()> {
        let loader = self.root.join("index.html");
        if fs::read(&loader).ok().as_deref() != Some(LOADER_HTML.as_bytes()) {
            write_atomic(&loader, LOADER_HTML.as_bytes())?;
        }
        let pointer = Pointer::for_release(id, crate::clock::now_rfc3339(), history);
        let mut bytes = serde_json::to_vec_pretty(&pointer)?;
        bytes.push(b'\n');
        fault::point("flip: before pointer write");
        write_atomic(&self.root.join(POINTER_NAME), &bytes)?;
        fault::point("flip: pointer written");
        Ok(())
    }

    /// Installs release `id` from `source` and makes it live; keeps `keep` old releases.
    pub fn deploy(&self, source: &Target, id: &str, keep: usize) -> Result<Manifest> {
        let _lock = DeployLock::acquire(&self.root, &format!("deploy {id} to {}", self.name))?;
        fault::point("deploy: lock taken");
        let manifest = self.install_from(source, id)?;
        self.verify(id)?;
        let history = match self.pointer()? {
            Some(p) if p.release != id => {
                let mut h = p.history;
                h.push(p.release);
                h
            }
            Some(p) => p.history,
            None => Vec::new(),
        };
        let start = history.len().saturating_sub(HISTORY_LEN);
        self.flip(id, history[start..].to_vec())?;
        self.gc(keep)?;
        Ok(manifest)
    }

    /// Makes an earlier release live again: the one live before the current (default) or `to`.
    pub fn rollback(&self, to: Option<&str>) -> Result<(String, String)> {
        let _lock = DeployLock::acquire(&self.root, &format!("rollback {}", self.name))?;
        let pointer = self
            .pointer()?
            .with_context(|| format!("{} has no live release to roll back", self.name))?;
        let mut history = pointer.history.clone();
        let target = match to {
            Some(id) => {
                if id == pointer.release {
                    bail!("{id} is already live on {}", self.name);
                }
                // An explicit jump is undoable like a deploy: the current release joins the history.
                history.retain(|h| h != id);
                history.push(pointer.release.clone());
                id.to_string()
            }
            None => history.pop().with_context(|| {
                format!(
                    "{} has no earlier release recorded; name one with --to (see `searchbar \
                     releases --env {}`)",
                    self.name, self.name
                )
            })?,
        };
        self.verify(&target)
            .with_context(|| format!("cannot roll back to {target}"))?;
        self.flip(&target, history)?;
        Ok((pointer.release, target))
    }

    /// Deletes releases beyond the newest `keep` (never the live one or any in the pointer's
    /// recent history), then artifacts no kept release names. Old pages keep working while
    /// their release is kept.
    pub fn gc(&self, keep: usize) -> Result<()> {
        let keep = keep.max(2);
        let pointer = self.pointer()?;
        let releases = self.releases()?;
        let mut kept: BTreeSet<String> = releases
            .iter()
            .rev()
            .take(keep)
            .map(|m| m.release.clone())
            .collect();
        if let Some(p) = &pointer {
            kept.insert(p.release.clone());
            if let Some(prev) = p.history.last() {
                kept.insert(prev.clone());
            }
        }
        let mut referenced = BTreeSet::new();
        for m in &releases {
            if kept.contains(&m.release) {
                for f in m.files.all() {
                    referenced.insert(self.artifact_path(&f.path)?);
                }
            } else {
                let dir = self.release_dir(&m.release);
                // Rename first so a half-deleted release never sits under its real name.
                let trash = self
                    .root
                    .join("releases")
                    .join(format!(".tmp-gc-{}", m.release));
                fs::rename(&dir, &trash)?;
                fs::remove_dir_all(&trash)?;
                fault::point("gc: release removed");
            }
        }
        if let Ok(entries) = fs::read_dir(self.files_dir()) {
            for entry in entries.flatten() {
                let path = entry.path();
                let name = entry.file_name().to_string_lossy().to_string();
                if !name.starts_with('.') && !referenced.contains(&path) {
                    fs::remove_file(&path)?;
                }
            }
        }
        Ok(())
    }
}

/// Resolves a release id prefix (as users type it) to a full id on this target.
pub fn resolve_release(target: &Target, prefix: &str) -> Result<String> {
    let matches: Vec<String> = target
        .releases()?
        .into_iter()
        .map(|m| m.release)
        .filter(|r| r.starts_with(prefix))
        .collect();
    match matches.as_slice() {
        [one] => Ok(one.clone()),
        [] => bail!("no release {prefix:?} on {}", target.name),
        _ => bail!(
            "{prefix:?} matches several releases: {}",
            matches.join(", ")
        ),
    }
}

/// A path given relative to `base` unless absolute.
pub fn resolve_path(base: &Path, p: &Path) -> PathBuf {
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        base.join(p)
    }
}
