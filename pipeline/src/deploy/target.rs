//! A deploy target: immutable releases and one pointer (see searchbar-release's layout), in a
//! directory or in an S3-compatible bucket, with the same guarantees in both: artifacts first,
//! then the release's page and manifest, then the pointer in one write, so a reader sees the old
//! release or the new one and never a mix.

use super::bucket::{Bucket, BucketLock};
use super::encoding::{self, Encoding, ENCODINGS};
use super::fsutil::{link_or_copy, remove_temporaries, require_regular, sync_dir, write_atomic};
use super::headers::{headers_file, nginx_snippet, HEADERS_FILE, NGINX_FILE};
use super::lock::DeployLock;
use crate::fault;
use anyhow::{bail, Context, Result};
use searchbar_release::layout::{self, ROOT_PAGE_NAME};
use searchbar_release::layout::{FILES_DIR, RELEASES_DIR};
use searchbar_release::{
    FileRef, Manifest, Pointer, FILES_PREFIX, MANIFEST_NAME, PAGE_NAME, POINTER_NAME,
};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

/// How many past live releases the pointer remembers for rollback.
const HISTORY_LEN: usize = 20;

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
    place: Place,
}

/// Where a target's files are.
#[derive(Debug, Clone)]
enum Place {
    Dir(PathBuf),
    Bucket(Bucket),
}

/// A target's lock, of whichever kind its place takes.
#[derive(Debug)]
#[allow(dead_code)] // Held for its `Drop`.
enum TargetLock {
    Dir(DeployLock),
    Bucket(BucketLock),
}

/// Where admission records sit at a target's root (not for the web).
const ADMISSIONS_DIR: &str = "admissions";

impl Target {
    /// A directory target.
    pub fn new(name: &str, root: PathBuf) -> Self {
        Self {
            name: name.to_string(),
            place: Place::Dir(root),
        }
    }

    /// A bucket target.
    pub fn bucket(name: &str, bucket: Bucket) -> Self {
        Self {
            name: name.to_string(),
            place: Place::Bucket(bucket),
        }
    }

    /// The directory of a directory target; `None` for a bucket.
    pub fn dir(&self) -> Option<&Path> {
        match &self.place {
            Place::Dir(root) => Some(root),
            Place::Bucket(_) => None,
        }
    }

    /// Where the target is, for messages: its directory or its `s3://` URL.
    pub fn location(&self) -> String {
        self.describe("")
    }

    fn describe(&self, key: &str) -> String {
        match &self.place {
            Place::Dir(root) => root.join(key).display().to_string(),
            Place::Bucket(b) => b.describe(key),
        }
    }

    /// The directory of a directory target, or an error naming what a bucket cannot do.
    fn root(&self) -> Result<&Path> {
        self.dir().with_context(|| {
            format!(
                "{} is a bucket ({}), not a directory",
                self.name,
                self.location()
            )
        })
    }

    pub fn files_dir(&self) -> Result<PathBuf> {
        Ok(layout::files_dir(self.root()?))
    }

    pub fn release_dir(&self, id: &str) -> Result<PathBuf> {
        Ok(layout::release_dir(self.root()?, id))
    }

    /// The bytes at `key` (a path below the target's root), or `None` where there are none.
    fn read(&self, key: &str) -> Result<Option<Vec<u8>>> {
        match &self.place {
            Place::Dir(root) => {
                let path = root.join(key);
                match fs::read(&path) {
                    Ok(b) => Ok(Some(b)),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                    Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
                }
            }
            Place::Bucket(b) => b.get(key),
        }
    }

    /// Writes `bytes` at `key` so that a reader sees the old bytes or the new ones.
    fn write(&self, key: &str, bytes: &[u8]) -> Result<()> {
        match &self.place {
            Place::Dir(root) => write_atomic(&root.join(key), bytes),
            Place::Bucket(b) => b.put(key, bytes, None),
        }
    }

    fn lock(&self, command: &str) -> Result<TargetLock> {
        Ok(match &self.place {
            Place::Dir(root) => TargetLock::Dir(DeployLock::acquire(root, command)?),
            Place::Bucket(b) => TargetLock::Bucket(b.lock(command)?),
        })
    }

    /// The lock a copy from this target takes: shared on a directory (other copies may run,
    /// writers may not); a bucket's lock has one mode.
    fn lock_to_read(&self, command: &str) -> Result<TargetLock> {
        Ok(match &self.place {
            Place::Dir(root) => TargetLock::Dir(DeployLock::acquire_shared(root, command)?),
            Place::Bucket(b) => TargetLock::Bucket(b.lock(command)?),
        })
    }

    fn same_place(&self, other: &Target) -> bool {
        match (&self.place, &other.place) {
            (Place::Dir(a), Place::Dir(b)) => a == b,
            (Place::Bucket(a), Place::Bucket(b)) => a.describe("") == b.describe(""),
            _ => false,
        }
    }

    /// The live release, if any. A pointer that cannot be read is an error, not "none":
    /// deploying over an unreadable pointer would silently drop the rollback history.
    pub fn pointer(&self) -> Result<Option<Pointer>> {
        self.read_json(POINTER_NAME, "pointer")
    }

    fn read_json<T: serde::de::DeserializeOwned>(
        &self,
        key: &str,
        what: &str,
    ) -> Result<Option<T>> {
        self.read(key)?
            .map(|bytes| {
                serde_json::from_slice(&bytes)
                    .with_context(|| format!("{}: not a valid {what}", self.describe(key)))
            })
            .transpose()
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

    fn admission_key(id: &str) -> String {
        format!("{ADMISSIONS_DIR}/{id}.json")
    }

    /// Why release `id` was let onto this target, if it was recorded.
    pub fn admission(&self, id: &str) -> Result<Option<Admission>> {
        self.read_json(&Self::admission_key(id), "admission record")
    }

    pub fn manifest(&self, id: &str) -> Result<Manifest> {
        let key = release_key(id, MANIFEST_NAME);
        let bytes = self
            .read(&key)?
            .with_context(|| format!("reading {}: not found", self.describe(&key)))?;
        Ok(Manifest::from_json(&bytes, &self.describe(&key))?)
    }

    /// Where a manifest path (relative to the release directory) lives on disk.
    pub fn artifact_path(&self, rel: &str) -> Result<PathBuf> {
        Ok(self.files_dir()?.join(artifact_name(rel)?))
    }

    /// The bytes of the artifact a manifest names by `rel`, as stored (verify them before use).
    pub fn read_artifact(&self, rel: &str) -> Result<Vec<u8>> {
        let key = artifact_key(rel)?;
        self.read(&key)?
            .with_context(|| format!("reading {}: not found", self.describe(&key)))
    }

    /// Every artifact of `manifest` on this target ([`Files::artifacts`]): the files it names,
    /// and the pages and parts of its part tables, whose root and pages are read from here
    /// and checked.
    ///
    /// [`Files::artifacts`]: searchbar_release::Files::artifacts
    pub fn artifacts(&self, manifest: &Manifest) -> Result<Vec<FileRef>> {
        manifest
            .files
            .artifacts(&mut |f: &FileRef| self.read_artifact(&f.path))
    }

    /// Checks that release `id` is complete: manifest readable, every artifact and the page
    /// present (as regular files, in a directory) with the right size and sha256, and every
    /// precompressed variant decoding to its artifact.
    pub fn verify(&self, id: &str) -> Result<Manifest> {
        if let Place::Dir(root) = &self.place {
            require_regular(&layout::release_dir(root, id).join(MANIFEST_NAME))?;
        }
        let manifest = self.manifest(id)?;
        if manifest.release != id {
            bail!(
                "{}: manifest names release {}, not {id}",
                self.describe(&release_key(id, "")),
                manifest.release
            );
        }
        let check = |key: &str, entry: Option<&searchbar_release::FileRef>| -> Result<()> {
            let context = || format!("release {id} on {}", self.name);
            let missing = || format!("{} is missing", self.describe(key));
            match &self.place {
                Place::Dir(root) => {
                    require_regular(&root.join(key))?;
                    let Some(entry) = entry else {
                        return Ok(());
                    };
                    let bytes = self.read(key)?.with_context(missing)?;
                    entry.verify(&bytes).with_context(context)?;
                    encoding::verify_variants(&root.join(key), entry).with_context(context)?;
                }
                // An object a deploy wrote carries the sha256 of the bytes it sent, which the
                // store checked on receipt (the client sends a SHA-256 checksum with each
                // PUT), and its variants were decoded and checked before they were sent: so
                // its size and recorded hash are checked here, without downloading it. An
                // object written some other way is downloaded and checked whole.
                Place::Bucket(b) => {
                    let head = b.head(key)?.with_context(missing)?;
                    let Some(entry) = entry else {
                        return Ok(());
                    };
                    match head.sha256 {
                        Some(sha) if head.size == entry.bytes && entry.matches_sha256(&sha) => {}
                        Some(sha) => bail!(
                            "{}: {} bytes with sha256 {sha}, the manifest says {} bytes with \
                             sha256 {} ({})",
                            b.describe(key),
                            head.size,
                            entry.bytes,
                            entry.sha256,
                            context()
                        ),
                        None => {
                            let bytes = self.read(key)?.with_context(missing)?;
                            entry.verify(&bytes).with_context(context)?;
                        }
                    }
                    for enc in ENCODINGS {
                        let at = variant_key(key, enc);
                        if b.head(&at)?.is_some_and(|h| h.sha256.is_none()) {
                            let raw = b.get(&at)?.unwrap_or_default();
                            encoding::check_variant(enc, &raw, entry)
                                .with_context(|| b.describe(&at))
                                .with_context(context)?;
                        }
                    }
                }
            }
            Ok(())
        };
        for file in &self.artifacts(&manifest)? {
            check(&artifact_key(&file.path)?, Some(file))?;
        }
        // Manifests from before the page was hashed name no page entry; every export since does.
        check(&release_key(id, PAGE_NAME), manifest.page.as_ref())?;
        Ok(manifest)
    }

    /// Every release (temporaries and, in a bucket, releases whose manifest is not written yet
    /// aside), readable or not. A manifest whose id is not its directory's name counts as
    /// unreadable: ids, not names, are what pointers hold.
    pub fn entries(&self) -> Result<Vec<ReleaseEntry>> {
        let found: Vec<(String, Result<Manifest>)> = match &self.place {
            Place::Dir(root) => {
                let dir = layout::releases_dir(root);
                let entries = match fs::read_dir(&dir) {
                    Ok(e) => e,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
                    Err(e) => return Err(e).with_context(|| format!("listing {}", dir.display())),
                };
                let mut found = Vec::new();
                for entry in entries {
                    let entry = entry.with_context(|| format!("listing {}", dir.display()))?;
                    let name = entry.file_name().to_string_lossy().to_string();
                    if !name.starts_with('.') {
                        let manifest = self.manifest(&name);
                        found.push((name, manifest));
                    }
                }
                found
            }
            Place::Bucket(b) => {
                let mut found = Vec::new();
                for name in b.list(RELEASES_DIR)?.1 {
                    if name.starts_with('.') {
                        continue;
                    }
                    // One GET each: a release whose manifest is not written yet is not listed.
                    let key = release_key(&name, MANIFEST_NAME);
                    let manifest = match b.get(&key) {
                        Ok(None) => continue,
                        Ok(Some(bytes)) => {
                            Manifest::from_json(&bytes, &self.describe(&key)).map_err(Into::into)
                        }
                        Err(e) => Err(e),
                    };
                    found.push((name, manifest));
                }
                found
            }
        };
        let mut out: Vec<ReleaseEntry> = found
            .into_iter()
            .map(|(name, manifest)| {
                let manifest = manifest.and_then(|m| {
                    if m.release == name {
                        Ok(m)
                    } else {
                        bail!(
                            "{}: its manifest names release {}",
                            self.describe(&release_key(&name, "")),
                            m.release
                        )
                    }
                });
                ReleaseEntry {
                    dir: name,
                    manifest,
                }
            })
            .collect();
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

    /// Places the object at `key` of this target at `dst`, a path in a directory target: a
    /// hard link or a copy from a directory, a download from a bucket.
    fn copy_out(&self, key: &str, dst: &Path) -> Result<()> {
        match &self.place {
            Place::Dir(root) => link_or_copy(&root.join(key), dst),
            Place::Bucket(b) => {
                let bytes = b
                    .get(key)?
                    .with_context(|| format!("{} is missing", b.describe(key)))?;
                write_atomic(dst, &bytes)
            }
        }
    }

    /// The precompressed variants this target holds of the artifact at `key`.
    fn variants(&self, key: &str) -> Result<Vec<Encoding>> {
        Ok(match &self.place {
            Place::Dir(root) => encoding::present(&root.join(key)).map(|(e, _)| e).collect(),
            Place::Bucket(b) => {
                let mut out = Vec::new();
                for enc in ENCODINGS {
                    if b.head(&variant_key(key, enc))?.is_some() {
                        out.push(enc);
                    }
                }
                out
            }
        })
    }

    /// Copies (or hard-links) the release of `manifest`, already verified on `source` (a
    /// target or an export, same layout), into this target without making it live, and
    /// verifies the copy.
    fn install_from(&self, source: &Target, manifest: &Manifest) -> Result<()> {
        match &self.place {
            Place::Dir(root) => self.install_into_dir(root, source, manifest),
            Place::Bucket(b) => self.install_into_bucket(b, source, manifest),
        }
    }

    /// Artifacts first, then the release directory by one rename, so a half-copied release is
    /// never visible under its name.
    fn install_into_dir(&self, root: &Path, source: &Target, manifest: &Manifest) -> Result<()> {
        let id = manifest.release.as_str();
        let files = layout::files_dir(root);
        fs::create_dir_all(&files)?;
        remove_temporaries(&files)?;
        let artifacts = source.artifacts(manifest)?;
        for file in &artifacts {
            let dst = self.artifact_path(&file.path)?;
            if let Ok(existing) = fs::read(&dst) {
                if file.verify(&existing).is_ok() {
                    continue;
                }
                // Same content-addressed name but wrong bytes: a previous crash or tampering.
                eprintln!("note: replacing corrupt {}", dst.display());
                fs::remove_file(&dst)?;
            }
            source.copy_out(&artifact_key(&file.path)?, &dst)?;
            fault::point("install: artifact placed");
        }
        // Then their compressed variants, each only once its artifact is in place. A variant
        // already here that does not decode to its artifact is replaced, like a corrupt file.
        for file in &artifacts {
            let (key, dst) = (artifact_key(&file.path)?, self.artifact_path(&file.path)?);
            if encoding::remove_bad_variants(&dst, file)? > 0 {
                eprintln!("note: replacing corrupt variants of {}", dst.display());
            }
            for enc in source.variants(&key)? {
                let to = enc.variant_of(&dst);
                if std::fs::symlink_metadata(&to).is_err() {
                    source.copy_out(&variant_key(&key, enc), &to)?;
                }
            }
        }
        fault::point("install: variants placed");
        sync_dir(&files)?;
        let releases = layout::releases_dir(root);
        fs::create_dir_all(&releases)?;
        remove_temporaries(&releases)?;
        let final_dir = layout::release_dir(root, id);
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
            source.copy_out(&release_key(id, name), &tmp.join(name))?;
        }
        sync_dir(&tmp)?;
        fault::point("install: release directory staged");
        fs::rename(&tmp, &final_dir)
            .with_context(|| format!("renaming into {}", final_dir.display()))?;
        sync_dir(&releases)?;
        fault::point("install: release directory in place");
        self.verify(id).map(drop)
    }

    /// Artifacts (each skipped when an object with its size and sha256 is already there) and
    /// their variants first, then the release's page, then its manifest: a release is listed
    /// only once its manifest is written, so a half-copied one is never seen as a release.
    fn install_into_bucket(&self, b: &Bucket, source: &Target, manifest: &Manifest) -> Result<()> {
        let id = manifest.release.as_str();
        let copy_in = |key: &str, enc: Option<Encoding>| -> Result<()> {
            match &source.place {
                Place::Bucket(from) if from.same_store(b) => b.copy_from(from, key, key),
                _ => {
                    let bytes = source
                        .read(key)?
                        .with_context(|| format!("{} is missing", source.describe(key)))?;
                    b.put(key, &bytes, enc)
                }
            }
        };
        // `sha256` may be a part table's short one: the object's whole one starts with it.
        let in_place = |key: &str, size: u64, sha256: &str| -> Result<bool> {
            Ok(b.head(key)?.is_some_and(|h| {
                h.size == size
                    && h.sha256
                        .is_some_and(|whole| searchbar_release::sha256_matches(sha256, &whole))
            }))
        };
        let artifacts = source.artifacts(manifest)?;
        for file in &artifacts {
            let key = artifact_key(&file.path)?;
            if !in_place(&key, file.bytes, &file.sha256)? {
                copy_in(&key, None)?;
                fault::point("install: artifact placed");
            }
        }
        // What a source bucket recorded of an object (size and sha256, from its headers): a
        // variant already in place is then skipped without downloading it.
        let recorded = |key: &str| -> Result<Option<(u64, String)>> {
            match &source.place {
                Place::Bucket(from) => Ok(from
                    .head(key)?
                    .and_then(|h| h.sha256.map(|sha| (h.size, sha)))),
                Place::Dir(_) => Ok(None),
            }
        };
        for file in &artifacts {
            let key = artifact_key(&file.path)?;
            for enc in source.variants(&key)? {
                let at = variant_key(&key, enc);
                if let Some((size, sha256)) = recorded(&at)? {
                    if in_place(&at, size, &sha256)? {
                        continue;
                    }
                }
                let raw = source
                    .read(&at)?
                    .with_context(|| format!("{} is missing", source.describe(&at)))?;
                if !in_place(&at, raw.len() as u64, &searchbar_release::sha256_hex(&raw))? {
                    encoding::check_variant(enc, &raw, file)
                        .with_context(|| source.describe(&at))?;
                    b.put(&at, &raw, Some(enc))?;
                }
            }
        }
        fault::point("install: variants placed");
        if b.head(&release_key(id, MANIFEST_NAME))?.is_some() {
            return self.verify(id).map(drop).with_context(|| {
                format!(
                    "{} exists but is not a complete copy of release {id}; refusing to \
                     overwrite an immutable release",
                    b.describe(&release_key(id, ""))
                )
            });
        }
        copy_in(&release_key(id, PAGE_NAME), None)?;
        fault::point("install: release page placed");
        copy_in(&release_key(id, MANIFEST_NAME), None)?;
        fault::point("install: release manifest placed");
        self.verify(id).map(drop)
    }

    /// Makes `id` live with one atomic pointer write, then makes the root page its page. On a
    /// directory the header rules for static hosts are brought up to date first.
    fn flip(&self, id: &str, history: Vec<String>) -> Result<()> {
        if matches!(self.place, Place::Dir(_)) {
            for (key, text) in [
                (HEADERS_FILE, headers_file()),
                (NGINX_FILE, nginx_snippet()),
            ] {
                if self.read(key)?.as_deref() != Some(text.as_bytes()) {
                    self.write(key, text.as_bytes())?;
                }
            }
        }
        let pointer = Pointer::for_release(id, crate::clock::now_rfc3339(), history);
        let mut bytes = serde_json::to_vec_pretty(&pointer)?;
        bytes.push(b'\n');
        fault::point("flip: before pointer write");
        self.write(POINTER_NAME, &bytes)?;
        fault::point("flip: pointer written");
        self.write_root_page(id)?;
        fault::point("flip: root page written");
        Ok(())
    }

    /// Makes the root page release `id`'s page ([`layout::root_page`]) unless it is already.
    /// It follows the pointer: written after it, so the root never shows a release before the
    /// pointer names it. A command killed between the two leaves the root on the release live
    /// before, which gc keeps; the next deploy, rollback, promote or gc puts it right.
    fn write_root_page(&self, id: &str) -> Result<()> {
        let key = release_key(id, PAGE_NAME);
        let page = self
            .read(&key)?
            .with_context(|| format!("{} is missing", self.describe(&key)))?;
        let root = layout::root_page(&page, id);
        if self.read(ROOT_PAGE_NAME)?.as_deref() != Some(root.as_slice()) {
            self.write(ROOT_PAGE_NAME, &root)?;
        }
        Ok(())
    }

    /// Installs release `id` from `source` and makes it live if `admit` lets it replace the
    /// live release; keeps `keep` old releases. The live release is read, judged and
    /// replaced under the target's lock, so nothing can go live between the verdict and the
    /// flip. The source is locked too (shared, on a directory): a deploy or gc there cannot
    /// change it mid-copy.
    pub fn deploy(
        &self,
        source: &Target,
        id: &str,
        keep: usize,
        via: &str,
        admit: &Admit,
    ) -> Result<(Manifest, Admission)> {
        let _lock = self.lock(&format!("deploy {id} to {}", self.name))?;
        let _source_lock = (!source.same_place(self))
            .then(|| source.lock_to_read(&format!("copy {id} from")))
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
        self.write(&Self::admission_key(id), &record)?;
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
        if let Err(e) = self.gc_locked(keep, Some(id)) {
            eprintln!(
                "warning: {id} is live on {}, but gc failed: {e:#}",
                self.name
            );
        }
        Ok((candidate, admission))
    }

    /// Makes an earlier release live again: the one live before the current (default) or `to`.
    pub fn rollback(&self, to: Option<&str>) -> Result<(String, String)> {
        let _lock = self.lock(&format!("rollback {}", self.name))?;
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
        let _lock = self.lock(&format!("gc {}", self.name))?;
        self.gc_locked(keep, None)
    }

    /// [`Target::gc`] for a caller that holds the lock. A release it cannot read is kept, and
    /// then no artifact is deleted at all: what that release names is unknown, and a file it
    /// needs must never go. `root_on`: the release whose page the caller has just made the
    /// root page under the same lock (a deploy's flip), which need not be read back again.
    fn gc_locked(&self, keep: usize, root_on: Option<&str>) -> Result<()> {
        let keep = keep.max(2);
        match &self.place {
            Place::Dir(root) => {
                remove_temporaries(root)?;
                remove_temporaries(&layout::releases_dir(root))?;
                remove_temporaries(&layout::files_dir(root))?;
                remove_temporaries(&root.join(ADMISSIONS_DIR))?;
            }
            Place::Bucket(b) => self.remove_incomplete_releases(b)?,
        }
        let pointer = self.pointer()?;
        // Before anything is deleted: a root page left on an older release by a killed command
        // must not name a release about to go.
        if let Some(p) = pointer
            .as_ref()
            .filter(|p| Some(p.release.as_str()) != root_on)
        {
            self.write_root_page(&p.release)?;
        }
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
        // The names in `files/` that a kept release needs, its artifacts' variants included.
        let mut referenced = BTreeSet::new();
        for m in &readable {
            if kept.contains(&m.release) {
                // A part table that cannot be read leaves what the release needs unknown.
                let files = match self.artifacts(m) {
                    Ok(files) => files,
                    Err(e) => {
                        unreadable.push(format!("{}: {e:#}", m.release));
                        continue;
                    }
                };
                for f in &files {
                    let name = artifact_name(&f.path)?;
                    referenced.extend(ENCODINGS.map(|e| format!("{name}.{}", e.ext())));
                    referenced.insert(name.to_string());
                }
                continue;
            }
            self.remove_release(&m.release)?;
        }
        if !unreadable.is_empty() {
            bail!(
                "kept every artifact: cannot tell what these releases need: {}",
                unreadable.join("; ")
            );
        }
        let present: Vec<String> = match &self.place {
            Place::Dir(root) => fs::read_dir(layout::files_dir(root))
                .map(|entries| {
                    entries
                        .flatten()
                        .map(|e| e.file_name().to_string_lossy().to_string())
                        .collect()
                })
                .unwrap_or_default(),
            Place::Bucket(b) => b.list(FILES_DIR)?.0,
        };
        for name in present {
            if !name.starts_with('.') && !referenced.contains(&name) {
                let key = format!("{FILES_DIR}/{name}");
                match &self.place {
                    Place::Dir(root) => fs::remove_file(root.join(&key))
                        .with_context(|| format!("removing {}", self.describe(&key)))?,
                    Place::Bucket(b) => b.delete(&key)?,
                }
                fault::point("gc: artifact removed");
            }
        }
        Ok(())
    }

    /// Removes release `id` and its admission record; the release disappears as a whole
    /// first (renamed aside in a directory, its manifest deleted in a bucket), so a
    /// half-deleted release is never seen as one.
    fn remove_release(&self, id: &str) -> Result<()> {
        match &self.place {
            Place::Dir(root) => {
                let dir = layout::release_dir(root, id);
                let trash = layout::releases_dir(root).join(format!(".tmp-gc-{id}"));
                fs::rename(&dir, &trash)
                    .with_context(|| format!("moving {} aside", dir.display()))?;
                fault::point("gc: release moved aside");
                let _ = fs::remove_file(root.join(Self::admission_key(id)));
                fs::remove_dir_all(&trash)
                    .with_context(|| format!("removing {}", trash.display()))?;
            }
            Place::Bucket(b) => {
                b.delete(&release_key(id, MANIFEST_NAME))?;
                fault::point("gc: release moved aside");
                b.delete(&release_key(id, PAGE_NAME))?;
                b.delete(&Self::admission_key(id))?;
            }
        }
        fault::point("gc: release removed");
        Ok(())
    }

    /// Deletes what a killed install left of a release in a bucket: objects under a release
    /// whose manifest was never written. Only under the target's lock: another writer's
    /// half-copied release is live work.
    fn remove_incomplete_releases(&self, b: &Bucket) -> Result<()> {
        for name in b.list(RELEASES_DIR)?.1 {
            if b.head(&release_key(&name, MANIFEST_NAME))?.is_none() {
                for object in b.list(&release_key(&name, ""))?.0 {
                    b.delete(&release_key(&name, &object))?;
                }
            }
        }
        Ok(())
    }
}

/// The key of a precompressed variant of the artifact at `key`.
fn variant_key(key: &str, enc: Encoding) -> String {
    format!("{key}.{}", enc.ext())
}

/// The name in `files/` of the artifact a manifest names by `rel`.
fn artifact_name(rel: &str) -> Result<&str> {
    layout::artifact_name(rel)
        .with_context(|| format!("artifact path {rel:?} is not under {FILES_PREFIX}"))
}

/// `files/<name>` for the artifact a manifest names by `rel`.
fn artifact_key(rel: &str) -> Result<String> {
    Ok(format!("{FILES_DIR}/{}", artifact_name(rel)?))
}

/// `releases/<id>/<name>`.
fn release_key(id: &str, name: &str) -> String {
    format!("{RELEASES_DIR}/{id}/{name}")
}

fn oldest_first(releases: &mut [Manifest]) {
    releases.sort_by(|a, b| (&a.created, &a.release).cmp(&(&b.created, &b.release)));
}

/// Reads a JSON file that may be absent (`None`); unreadable or invalid is an error naming it.
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
