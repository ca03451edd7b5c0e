//! A deploy target: a directory of immutable releases and one pointer (see searchbar-release).

use super::encoding;
use super::fsutil::{link_or_copy, remove_temporaries, require_regular, sync_dir, write_atomic};
use super::lock::DeployLock;
use crate::fault;
use anyhow::{bail, Context, Result};
use searchbar_release::layout::{self, LOADER_NAME};
use searchbar_release::{Manifest, Pointer, FILES_PREFIX, MANIFEST_NAME, PAGE_NAME, POINTER_NAME};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::LazyLock;

/// How many past live releases the pointer remembers for rollback.
const HISTORY_LEN: usize = 20;

/// The stable page at a target's root: it reads the pointer and opens the live release's own
/// page, so a page, once open, keeps using the release it came from. It shows the release
/// page's box (the web app's shell and stylesheet, from the sources the web bundle is built
/// from) so the box is there at first paint, and hands what was typed into it to the release
/// page.
static LOADER_HTML: LazyLock<String> = LazyLock::new(|| {
    loader_html(
        include_str!("loader.html"),
        include_str!("../../../index.html"),
        include_str!("../../../web/style.css"),
    )
});

/// `template` with the stylesheet and the part of `page` between its shell markers in place.
fn loader_html(template: &str, page: &str, style: &str) -> String {
    let shell = page
        .split_once("<!-- shell -->")
        .and_then(|(_, rest)| rest.split_once("<!-- /shell -->"))
        .map_or("", |(shell, _)| shell.trim());
    template
        .replacen("/*style*/", style.trim(), 1)
        .replacen("<!--shell-->", shell, 1)
}

/// Why a release was let onto a target: the gate's verdict against the release that was live
/// there, or an explicit `--force`. Kept per target in `admissions/<id>.json` (beside the
/// immutable release, which is the same bytes on every target).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Admission {
    pub release: String,
    pub target: String,
    /// RFC 3339, UTC.
    pub at: String,
    /// How it came: `deploy` or `promote from <target>`.
    pub via: String,
    /// The release live on the target when it was judged.
    pub baseline: Option<String>,
    pub passed: bool,
    /// Let on despite a failed check (`--force`).
    pub forced: bool,
    /// Each check, `pass: ...` or `FAIL: ...`.
    pub checks: Vec<String>,
}

/// Decides whether `candidate` may replace `live` (None: the target is empty). Returns the
/// admission to record, or an error (a `GateRefused` for a failed gate) to refuse.
pub type Admit<'a> = dyn Fn(&Manifest, Option<&Manifest>) -> Result<Admission> + 'a;

/// One entry of `releases/`: its directory name and its manifest, or why it cannot be read.
#[derive(Debug)]
pub struct ReleaseEntry {
    pub dir: String,
    pub manifest: Result<Manifest>,
}

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
        layout::files_dir(&self.root)
    }

    pub fn release_dir(&self, id: &str) -> PathBuf {
        layout::release_dir(&self.root, id)
    }

    fn releases_dir(&self) -> PathBuf {
        layout::releases_dir(&self.root)
    }

    /// The live release, if any. A pointer that cannot be read is an error, not "none":
    /// deploying over an unreadable pointer would silently drop the rollback history.
    pub fn pointer(&self) -> Result<Option<Pointer>> {
        read_optional_json(&self.root.join(POINTER_NAME), "pointer")
    }

    /// The manifest of the live release, if any: what the gate compares a candidate with. A
    /// live release that cannot be read is an error: the gate would compare with nothing.
    pub fn live_manifest(&self) -> Result<Option<Manifest>> {
        self.pointer()?
            .map(|p| self.manifest_of_live(&p))
            .transpose()
    }

    fn manifest_of_live(&self, pointer: &Pointer) -> Result<Manifest> {
        self.manifest(&pointer.release).with_context(|| {
            format!(
                "the live release {} of {} cannot be read, so the gate cannot compare against it",
                pointer.release, self.name
            )
        })
    }

    fn admission_path(&self, id: &str) -> PathBuf {
        self.root.join("admissions").join(format!("{id}.json"))
    }

    /// Why release `id` was let onto this target, if it was recorded.
    pub fn admission(&self, id: &str) -> Result<Option<Admission>> {
        read_optional_json(&self.admission_path(id), "admission record")
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

    /// Checks that release `id` is complete: manifest readable, every artifact and the page
    /// present as regular files with the right size and sha256.
    pub fn verify(&self, id: &str) -> Result<Manifest> {
        require_regular(&self.release_dir(id).join(MANIFEST_NAME))?;
        let manifest = self.manifest(id)?;
        if manifest.release != id {
            bail!(
                "{}: manifest names release {}, not {id}",
                self.release_dir(id).display(),
                manifest.release
            );
        }
        let check = |path: &Path, entry: Option<&searchbar_release::FileRef>| -> Result<()> {
            require_regular(path)?;
            if let Some(entry) = entry {
                let bytes =
                    fs::read(path).with_context(|| format!("reading {}", path.display()))?;
                entry
                    .verify(&bytes)
                    .with_context(|| format!("release {id} on {}", self.name))?;
                encoding::verify_variants(path, entry)
                    .with_context(|| format!("release {id} on {}", self.name))?;
            }
            Ok(())
        };
        for file in manifest.files.all() {
            check(&self.artifact_path(&file.path)?, Some(file))?;
        }
        // Manifests from before the page was hashed name no page entry; every export since does.
        check(
            &self.release_dir(id).join(PAGE_NAME),
            manifest.page.as_ref(),
        )?;
        Ok(manifest)
    }

    /// Every release directory (temporaries aside), readable or not. A manifest whose id is
    /// not its directory's name counts as unreadable: ids, not names, are what pointers hold.
    pub fn entries(&self) -> Result<Vec<ReleaseEntry>> {
        let dir = self.releases_dir();
        let entries = match fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(e).with_context(|| format!("listing {}", dir.display())),
        };
        let mut out = Vec::new();
        for entry in entries {
            let entry = entry.with_context(|| format!("listing {}", dir.display()))?;
            let name = entry.file_name().to_string_lossy().to_string();
            if name.starts_with('.') {
                continue;
            }
            let manifest = self.manifest(&name).and_then(|m| {
                if m.release == name {
                    Ok(m)
                } else {
                    bail!(
                        "{}: its manifest names release {}",
                        self.release_dir(&name).display(),
                        m.release
                    )
                }
            });
            out.push(ReleaseEntry {
                dir: name,
                manifest,
            });
        }
        out.sort_by(|a, b| a.dir.cmp(&b.dir));
        Ok(out)
    }

    /// Readable releases present on the target, oldest first.
    pub fn releases(&self) -> Result<Vec<Manifest>> {
        let mut out: Vec<Manifest> = self
            .entries()?
            .into_iter()
            .filter_map(|e| e.manifest.ok())
            .collect();
        oldest_first(&mut out);
        Ok(out)
    }

    /// Copies (or hard-links) the release of `manifest`, already verified on `source` (a
    /// target or an export, same layout), into this target without making it live, and
    /// verifies the copy. Artifacts first, then the release directory
    /// by one rename, so a half-copied release is never visible under its name.
    fn install_from(&self, source: &Target, manifest: &Manifest) -> Result<()> {
        let id = manifest.release.as_str();
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
        // Then their compressed variants, each only once its artifact is in place. A variant
        // already here that does not decode to its artifact is replaced, like a corrupt file.
        for file in manifest.files.all() {
            let (src, dst) = (
                source.artifact_path(&file.path)?,
                self.artifact_path(&file.path)?,
            );
            if encoding::remove_bad_variants(&dst, file)? > 0 {
                eprintln!("note: replacing corrupt variants of {}", dst.display());
            }
            for (enc, from) in encoding::present(&src) {
                let to = enc.variant_of(&dst);
                if std::fs::symlink_metadata(&to).is_err() {
                    link_or_copy(&from, &to)?;
                }
            }
        }
        fault::point("install: variants placed");
        sync_dir(&files)?;
        let releases = self.releases_dir();
        fs::create_dir_all(&releases)?;
        remove_temporaries(&releases)?;
        let final_dir = self.release_dir(id);
        if final_dir.exists() {
            return self.verify(id).map(drop).with_context(|| {
                format!(
                    "{} exists but is not a complete copy of release {id}; refusing to \
                     overwrite an immutable release",
                    final_dir.display()
                )
            });
        }
        let tmp = releases.join(format!(".tmp-{}-{id}", std::process::id()));
        fs::create_dir_all(&tmp)?;
        // Exactly the two files the manifest covers; anything else in the source's release
        // directory (a stray file, a link) is not part of the release and is not copied.
        for name in [MANIFEST_NAME, PAGE_NAME] {
            link_or_copy(&source.release_dir(id).join(name), &tmp.join(name))?;
        }
        sync_dir(&tmp)?;
        fault::point("install: release directory staged");
        fs::rename(&tmp, &final_dir)
            .with_context(|| format!("renaming into {}", final_dir.display()))?;
        sync_dir(&releases)?;
        fault::point("install: release directory in place");
        self.verify(id).map(drop)
    }

    /// Makes `id` live with one atomic pointer write.
    fn flip(&self, id: &str, history: Vec<String>) -> Result<()> {
        let loader = self.root.join(LOADER_NAME);
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

    /// Installs release `id` from `source` and makes it live if `admit` lets it replace the
    /// live release; keeps `keep` old releases. The live release is read, judged and
    /// replaced under the target's lock, so nothing can go live between the verdict and the
    /// flip. The source is locked shared: a deploy or gc there cannot change it mid-copy.
    pub fn deploy(
        &self,
        source: &Target,
        id: &str,
        keep: usize,
        via: &str,
        admit: &Admit,
    ) -> Result<(Manifest, Admission)> {
        let _lock = DeployLock::acquire(&self.root, &format!("deploy {id} to {}", self.name))?;
        let _source_lock = (source.root != self.root)
            .then(|| DeployLock::acquire_shared(&source.root, &format!("copy {id} from")))
            .transpose()?;
        fault::point("deploy: lock taken");
        let candidate = source.verify(id)?;
        let pointer = self.pointer()?;
        let live = pointer
            .as_ref()
            .map(|p| self.manifest_of_live(p))
            .transpose()?;
        let mut admission = admit(&candidate, live.as_ref())?;
        admission.via = via.to_string();
        self.install_from(source, &candidate)?;
        let mut record = serde_json::to_vec_pretty(&admission)?;
        record.push(b'\n');
        write_atomic(&self.admission_path(id), &record)?;
        fault::point("deploy: admission recorded");
        let history = match pointer {
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
        // The release is live: a failure to tidy up is worth a warning, not a failed deploy.
        if let Err(e) = self.gc_locked(keep) {
            eprintln!(
                "warning: {id} is live on {}, but gc failed: {e:#}",
                self.name
            );
        }
        Ok((candidate, admission))
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
                // An explicit jump is undoable like a deploy: the current release joins the
                // history.
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

    /// Deletes releases beyond the newest `keep` (never the live one or the one before it),
    /// then artifacts no kept release names. Takes the target's lock.
    pub fn gc(&self, keep: usize) -> Result<()> {
        let _lock = DeployLock::acquire(&self.root, &format!("gc {}", self.name))?;
        self.gc_locked(keep)
    }

    /// [`Target::gc`] for a caller that holds the lock. A release directory it cannot read is
    /// kept, and then no artifact is deleted at all: what that release names is unknown, and
    /// a file it needs must never go.
    fn gc_locked(&self, keep: usize) -> Result<()> {
        let keep = keep.max(2);
        remove_temporaries(&self.root)?;
        remove_temporaries(&self.releases_dir())?;
        remove_temporaries(&self.files_dir())?;
        remove_temporaries(&self.root.join("admissions"))?;
        let pointer = self.pointer()?;
        let entries = self.entries()?;
        let mut unreadable = Vec::new();
        let mut readable = Vec::new();
        for e in entries {
            match e.manifest {
                Ok(m) => readable.push(m),
                Err(err) => unreadable.push(format!("{}: {err:#}", e.dir)),
            }
        }
        oldest_first(&mut readable);
        let mut kept: BTreeSet<String> = readable
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
        for m in &readable {
            if kept.contains(&m.release) {
                for f in m.files.all() {
                    let path = self.artifact_path(&f.path)?;
                    referenced.extend(encoding::ENCODINGS.map(|e| e.variant_of(&path)));
                    referenced.insert(path);
                }
                continue;
            }
            let dir = self.release_dir(&m.release);
            // Rename first so a half-deleted release never sits under its real name.
            let trash = self.releases_dir().join(format!(".tmp-gc-{}", m.release));
            fs::rename(&dir, &trash).with_context(|| format!("moving {} aside", dir.display()))?;
            fault::point("gc: release moved aside");
            let _ = fs::remove_file(self.admission_path(&m.release));
            fs::remove_dir_all(&trash).with_context(|| format!("removing {}", trash.display()))?;
            fault::point("gc: release removed");
        }
        if !unreadable.is_empty() {
            bail!(
                "kept every artifact: cannot tell what these releases need: {}",
                unreadable.join("; ")
            );
        }
        if let Ok(entries) = fs::read_dir(self.files_dir()) {
            for entry in entries.flatten() {
                let path = entry.path();
                let name = entry.file_name().to_string_lossy().to_string();
                if !name.starts_with('.') && !referenced.contains(&path) {
                    fs::remove_file(&path)
                        .with_context(|| format!("removing {}", path.display()))?;
                    fault::point("gc: artifact removed");
                }
            }
        }
        Ok(())
    }
}

fn oldest_first(releases: &mut [Manifest]) {
    releases.sort_by(|a, b| (&a.created, &a.release).cmp(&(&b.created, &b.release)));
}

/// Reads a JSON file that may be absent (`None`); unreadable or invalid is an error naming it.
fn read_optional_json<T: serde::de::DeserializeOwned>(
    path: &Path,
    what: &str,
) -> Result<Option<T>> {
    match fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .with_context(|| format!("{}: not a valid {what}", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_loader_shows_the_release_pages_box_and_style() {
        let loader = LOADER_HTML.as_str();
        for part in [
            r#"<input id="q""#,
            r#"<div id="app">"#,
            "#q:focus",
            "current.json",
        ] {
            assert!(loader.contains(part), "loader lacks {part:?}:\n{loader}");
        }
        assert!(!loader.contains("/*style*/") && !loader.contains("<!--shell-->"));
        assert!(!loader.contains("<!-- shell -->") && !loader.contains("data-trunk"));
        assert_eq!(loader_html("a<!--shell-->b", "no markers", ""), "ab");
    }
}
